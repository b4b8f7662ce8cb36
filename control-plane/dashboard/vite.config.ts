import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Served by the control plane under /dashboard; the admin API is same-origin.
export default defineConfig({
  base: "/dashboard/",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", sourcemap: false, reportCompressedSize: true },
  server: { proxy: { "/internal": "http://127.0.0.1:8000" } },
});
