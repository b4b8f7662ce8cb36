// Terminal output for the newcomer's stack: colors, a live progress line, and
// pino JSON log lines made readable.
const useColor = process.stdout.isTTY && !process.env.NO_COLOR && process.env.TERM !== "dumb";
const paint = (code) => (s) => (useColor ? `\x1b[${code}m${s}\x1b[0m` : String(s));
export const c = {
  bold: paint(1),
  dim: paint(2),
  red: paint(31),
  green: paint(32),
  yellow: paint(33),
  blue: paint(34),
  magenta: paint(35),
  cyan: paint(36),
  gray: paint(90),
};

let progressText = "";
function clearProgress() {
  if (progressText && process.stdout.isTTY) process.stdout.write("\r\x1b[K");
}
function drawProgress() {
  if (progressText && process.stdout.isTTY) process.stdout.write(progressText);
}
/** Prints a line without tearing the live progress line, if any. */
export function println(s = "") {
  clearProgress();
  process.stdout.write(`${s}\n`);
  drawProgress();
}
export function setProgress(text) {
  if (process.stdout.isTTY) {
    clearProgress();
    progressText = text;
    drawProgress();
  } else if (text) {
    progressText = text;
  }
}
export function endProgress(finalLine) {
  clearProgress();
  progressText = "";
  if (finalLine) process.stdout.write(`${finalLine}\n`);
}
export const info = (s) => println(`${c.cyan("tollgate")} ${s}`);
export const warn = (s) => println(`${c.yellow("tollgate")} ${c.yellow(s)}`);

// ------------------------------------------------------------ pino lines ---

const LEVELS = {
  10: ["TRACE", c.gray],
  20: ["DEBUG", c.gray],
  30: ["INFO ", c.green],
  40: ["WARN ", c.yellow],
  50: ["ERROR", c.red],
  60: ["FATAL", c.red],
};
const SKIP = new Set(["level", "time", "pid", "hostname", "name", "service", "msg", "v", "err", "error"]);

function formatValue(v) {
  if (typeof v === "string") return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  const s = JSON.stringify(v);
  return s && s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/** One pino JSON line → `HH:MM:SS LEVEL msg k=v ...` (+ an error's stack); other text as is. */
export function prettyLine(raw) {
  let o;
  try {
    o = JSON.parse(raw);
  } catch {
    return [raw];
  }
  if (!o || typeof o !== "object" || Array.isArray(o)) return [raw];
  const [label, color] = LEVELS[o.level] ?? [String(o.level ?? "").padEnd(5), (s) => s];
  const time =
    typeof o.time === "string"
      ? o.time.slice(11, 19)
      : typeof o.time === "number"
        ? new Date(o.time).toISOString().slice(11, 19)
        : "";
  const fields = Object.entries(o)
    .filter(([k]) => !SKIP.has(k))
    .slice(0, 8)
    .map(([k, v]) => `${c.gray(`${k}=`)}${formatValue(v)}`);
  const err = o.err ?? o.error;
  const errMsg = err && typeof err === "object" ? err.message : err;
  const head = [c.gray(time), color(label), o.msg ?? "", errMsg ? c.red(String(errMsg)) : "", ...fields]
    .filter(Boolean)
    .join(" ");
  const out = [head];
  if (err && typeof err === "object" && typeof err.stack === "string" && o.level >= 50) {
    for (const l of err.stack.split("\n").slice(1, 8)) out.push(c.gray(`    ${l.trim()}`));
  }
  return out;
}
