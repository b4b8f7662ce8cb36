import { beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
// The reference, for this test only: the gateway never loads gpt-tokenizer's encoder.
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import { O200K_TOKEN_SPLIT_REGEX } from "gpt-tokenizer/encodingParams/constants";
import { countTextTokens, estimatePromptTokens, warmTokenizer } from "./estimate.js";
import { createO200kCounter, O200K_SPLIT_PATTERN } from "./o200k-counter.js";
import { loadO200kTables, rankOf, type O200kTables } from "./o200k-tables.js";

/** gpt-tokenizer counting special-token strings as text, as the gateway must (user content is not markup). */
const reference = (text: string): number => countTokens(text, { disallowedSpecial: new Set() });

const SEED = 20_251_123;

const words = [
  "the",
  " quick",
  " brown",
  " fox",
  "jumps",
  " over",
  " lazy",
  " dog",
  "tokenizer",
  "Gateway",
  "HTTP",
  "JSONParser",
];
const sentence = (i: number) => `${words[i % words.length]}${words[(i * 7) % words.length]} ${i}, `;

/** Named texts of every kind a prompt holds. */
const CORPUS: Record<string, string> = {
  empty: "",
  prose:
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness. " +
    "Mr. O'Brien didn't say he'd come; we're sure they've left and I'll wait — “quoted” text… done.",
  contractions:
    "it's IT'S It'S we're WE'RE We'Re don't DON'T I'd I'D you'll YOU'LL they've THEY'VE I'm I'M 's 't 're 'S 'T 'RE ''s l'amour",
  code: `import { readFile } from "node:fs/promises";\r\n\r\nexport async function main(argv: string[]): Promise<number> {\n  const x = argv.map((a) => a.trim()).filter(Boolean); // comment\n  if (x.length === 0) { throw new Error(\`usage: \${argv[0]} <file>\`); }\n\treturn x.length >>> 1;\n}\n`,
  python: "def f(x):\n    return {k: v ** 2 for k, v in x.items() if v is not None}\n\n\nclass A(B):\n    pass\n",
  json: JSON.stringify({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "Hi there" }],
    tools: [
      {
        type: "function",
        function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
      },
    ],
    n: [0, -1, 3.14159, 1e21, 12345678901234567890],
  }),
  prettyJson: JSON.stringify({ a: { b: [1, 2, { c: "d" }] }, "key with spaces": null, ünï: "cödé" }, null, 2),
  chinese: "我们的网关在每次上游调用之前估算提示令牌的数量。这是一个测试，包含标点符号；还有“引号”和（括号）。",
  japanese: "東京は日本の首都です。ひらがなとカタカナ、そして漢字が混ざっています。ｶﾀｶﾅ半角もあります。",
  korean: "안녕하세요, 세계! 한국어 문장은 띄어쓰기가 있습니다.",
  arabic: "مرحبا بالعالم! هذه جملة باللغة العربية، مع أرقام ١٢٣٤٥ وعلامات ترقيم؟",
  hebrewMixed: "שלום עולם hello עולם 123 שלום.",
  russian: "Съешь же ещё этих мягких французских булок, да выпей чаю. ПРИВЕТ Мир",
  hindi: "नमस्ते दुनिया, यह एक परीक्षण वाक्य है।",
  thai: "สวัสดีชาวโลก นี่คือประโยคทดสอบ",
  emoji: "🎉🎉🎉 party 🚀 launch 👍🏽 ok 🇺🇸🇯🇵 flags ❤️ ✅",
  zwj: "👨‍👩‍👧‍👦 family, 👩‍💻 coder, 🏳️‍🌈 flag, 🧑🏾‍🤝‍🧑🏻 people, 👁️‍🗨️",
  combining: "e\u0301 a\u0308 n\u0303 Z\u0351\u0354\u0363a\u0347\u0331l\u0354g\u0349o\u0324 ǅ ǈ ʰ ᵃ",
  numbers:
    [1, 12, 123, 1234, 12345, 123456, 1234567, 12345678, 123456789, 1234567890, 98765432109876543210].join(" ") +
    " 3.14 -2.5e-10 0x1F 1,000,000 ٣٤٥ ½ ⅷ ²³",
  numbersGlued: "abc123def4567ghi89012345 v1.2.3 2025-11-23T00:00:00Z",
  whitespace: "a  b   c    d\t\te \t \t f\n\n\ng   \n   h\u00a0i\u2003j\u3000k          \n\n\n\n    ",
  newlines: "line1\nline2\r\nline3\rline4\n\r\n\r\n\n\n  \r\n\tindent\r\n",
  trailingSpace: "ends with spaces   ",
  onlySpaces: "       ",
  punctuation:
    "!!! ??? ... --- *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}} /// \\\\\\ ||| ~~~ ``` ''' \"\"\" <<< >>> === +++ ,,, ;;; :::\n//\n/**/",
  urls: "https://example.com/path/to/page?query=1&x=y#frag mailto:a.b@c.de C:\\Windows\\System32 ../../etc/passwd",
  markdown:
    "# Title\n\n- item **bold** _it_ `code`\n1. one\n> quote\n\n```ts\nconst a = 1;\n```\n| a | b |\n|---|---|\n",
  special:
    "<|endoftext|> <|fim_prefix|><|fim_middle|><|fim_suffix|> <|im_start|>user\nhi<|im_end|> <|im_sep|> <|endofprompt|> <|notspecial|>",
  controls: "\u0000\u0001\u0002\u0007\b\u000b\f\u000e\u001f\u007f\u0080\u0085\u009f",
  loneSurrogates: "a\ud800b \udc00 \ud83d x\ude00 \udbff\udfff ok \ud800\ud800",
  privateUse: "\ue000\uf8ff \u{f0000} \u{10fffd} \ufffd\ufffd \uffff",
  longWord: "a".repeat(2000) + " " + "ab".repeat(700) + "xyz".repeat(400),
  longCjk: "字".repeat(1500) + "漢字仮名交じり文".repeat(100),
  longPunct: "=".repeat(3000) + "-=".repeat(500) + "\n".repeat(300),
  longDigits: "7".repeat(3001),
  base64: Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 131 + 7) % 256)).toString("base64"),
  longMixed: Array.from({ length: 2500 }, (_, i) => sentence(i)).join(""),
};

/** Fragments that sit on the regex's and the merges' edges; random sequences of them. */
const FRAGMENTS = [
  "'s",
  "'S",
  "'t",
  "'T",
  "'re",
  "'RE",
  "'Re",
  "'ve",
  "'ll",
  "'LL",
  "'d",
  "'m",
  "'",
  '"',
  " ",
  "  ",
  "\t",
  "\n",
  "\r\n",
  "\r",
  "\n\n",
  " \n",
  "\u00a0",
  "\u3000",
  "a",
  "A",
  "Hello",
  "HELLO",
  "hello",
  "CamelCase",
  "é",
  "É",
  "ǅ",
  "ß",
  "0",
  "1",
  "12",
  "123",
  "1234",
  "٣",
  "½",
  ".",
  ",",
  "!",
  "?",
  "/",
  "//",
  "...",
  "-",
  "_",
  "(",
  ")",
  "{",
  "}",
  "<|",
  "|>",
  "<|endoftext|>",
  "中",
  "文",
  "日本",
  "한",
  "ع",
  "ש",
  "ก",
  "\u0301",
  "\u200d",
  "👨",
  "🏽",
  "🎉",
  "\ud800",
  "\udc00",
];

describe("o200k_base counter", () => {
  let tables: O200kTables;
  let counters: Record<string, (text: string) => number>;

  beforeAll(async () => {
    tables = await loadO200kTables();
    counters = {
      default: createO200kCounter(tables),
      // Every piece through tiktoken's scan, and every piece through the heap: both must agree with the reference.
      scan: createO200kCounter(tables, { heapAbove: Number.POSITIVE_INFINITY, cacheSlots: 0 }),
      heap: createO200kCounter(tables, { heapAbove: 0, cacheSlots: 0 }),
      // One cache slot: every piece that merges collides there, so only an exact byte match may hit.
      oneSlot: createO200kCounter(tables, { cacheSlots: 1 }),
    };
  });

  const agrees = (text: string): void => {
    const expected = reference(text);
    for (const [name, count] of Object.entries(counters))
      expect({ name, count: count(text) }).toEqual({ name, count: expected });
  };

  it("splits with gpt-tokenizer's o200k_base regex", () => {
    expect(O200K_SPLIT_PATTERN).toBe(O200K_TOKEN_SPLIT_REGEX.source);
    expect(O200K_TOKEN_SPLIT_REGEX.flags).toBe("gu");
  });

  it("packs all 199,998 ranks", () => {
    expect(tables.offsets.length - 1).toBe(199_998);
    const bytes = (s: string) => new TextEncoder().encode(s);
    const rank = (b: Uint8Array) => rankOf(tables, b, 0, b.length);
    expect(rank(bytes("!"))).toBe(0);
    expect(rank(bytes(" the"))).toBeGreaterThan(0);
    expect(rank(bytes("no such token at all, surely"))).toBe(-1);
    expect(rank(Uint8Array.of(0xff))).toBeGreaterThanOrEqual(0);
  });

  it.each(Object.entries(CORPUS))("counts %s exactly as gpt-tokenizer does", (_name, text) => {
    agrees(text);
  });

  it("counts the whole corpus as one long text, and again from the cache", () => {
    agrees(Object.values(CORPUS).join("\n"));
    agrees(Object.values(CORPUS).join("\n"));
  });

  it("counts special-token strings as text, where gpt-tokenizer's default throws", () => {
    expect(() => countTokens("<|endoftext|>")).toThrow();
    expect(counters.default!("<|endoftext|>")).toBe(reference("<|endoftext|>"));
    expect(counters.default!("<|endoftext|>")).toBeGreaterThan(1);
  });

  it("counts a byte-order mark as its own token, where gpt-tokenizer strips it when decoding a merge candidate", () => {
    // o200k_base has U+FEFF (rank 5574) and U+FEFF U+FEFF (rank 135153); gpt-tokenizer finds neither
    // (it says 2 and 4), so U+FEFF is left out of the comparisons above and below.
    expect(counters.default!("\ufeff")).toBe(1);
    expect(counters.default!("\ufeff\ufeff")).toBe(1);
  });

  const noBom = (s: string) => s.replaceAll("\ufeff", "");
  const property = (arbitrary: fc.Arbitrary<string>, numRuns: number, seed: number) =>
    fc.assert(
      fc.property(arbitrary.map(noBom), (text) => {
        const expected = reference(text);
        for (const count of Object.values(counters)) if (count(text) !== expected) return false;
        return true;
      }),
      { numRuns, seed },
    );

  it("agrees on random Unicode text", () => {
    property(fc.string({ unit: "grapheme", maxLength: 200 }), 300, SEED);
    property(fc.string({ unit: "binary", maxLength: 200 }), 300, SEED + 1);
  });

  it("agrees on random UTF-16, lone surrogates included", () => {
    property(
      fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 100 }).map((units) => String.fromCharCode(...units)),
      300,
      SEED + 2,
    );
  });

  it("agrees on random sequences of the regex's edge cases", () => {
    property(
      fc.array(fc.constantFrom(...FRAGMENTS), { maxLength: 60 }).map((f) => f.join("")),
      500,
      SEED + 3,
    );
  });

  it("agrees on long random pieces (the heap's ground)", () => {
    const letters = fc.constantFrom("a", "b", "e", "n", "t", "é", "字", "の", "ا", "ж");
    property(
      fc.array(letters, { minLength: 100, maxLength: 1500 }).map((l) => l.join("")),
      40,
      SEED + 4,
    );
  });
});

describe("estimate", () => {
  it("uses about 4 characters a token until the counter has loaded, then the exact count", async () => {
    const text = "The quick brown fox jumps over the lazy dog. 日本語のテキスト 👨‍👩‍👧";
    expect(countTextTokens(text)).toBe(Math.ceil(text.length / 4));
    await warmTokenizer();
    expect(countTextTokens(text)).toBe(reference(text));
  });

  it("samples the first 4,096 characters of a longer text and scales", async () => {
    await warmTokenizer();
    const text = CORPUS.longMixed!;
    expect(text.length).toBeGreaterThan(4096);
    const sample = reference(text.slice(0, 4096));
    expect(countTextTokens(text)).toBe(Math.ceil((sample * text.length) / 4096));
  });

  it("never throws on special-token strings in a request", async () => {
    await warmTokenizer();
    const body = { messages: [{ role: "user", content: "repeat <|endoftext|><|im_start|>system" }] };
    expect(estimatePromptTokens(body)).toBe(reference("repeat <|endoftext|><|im_start|>system") + 4 + 3);
  });
});
