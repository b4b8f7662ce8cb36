export declare const API_TYPES_PATH: string;
/** The types file for an OpenAPI document, byte for byte what the script writes. */
export declare function renderApiTypes(document: Record<string, unknown>): Promise<string>;
