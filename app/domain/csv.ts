/**
 * The CSV dialect of every tokenboard export: RFC 4180 quoting (a field is quoted when it holds
 * a comma, a double quote, CR or LF; quotes inside are doubled), UTF-8 without BOM (so the
 * header is exactly the first line), records ended by LF, NULL as an empty field and the empty
 * string as `""`. PostgreSQL's COPY … (FORMAT csv) writes this dialect; `stringifyCsv` writes
 * the same bytes from JavaScript values (tests compare the two).
 *
 * Formula neutralisation: a spreadsheet runs a cell that starts with = + - @ (and, in some,
 * tab or CR) as a formula. Text cells that start with one of those get a leading apostrophe,
 * which spreadsheets show as "this is text". Numeric columns are never touched: they come from
 * integer/numeric SQL columns, so `-500` there is a number (a deduction), not a formula, and a
 * spreadsheet must keep summing it. Which columns are text is declared per column, not guessed
 * from the value.
 */
import { stringify } from "csv-stringify/sync";

export const FORMULA_TRIGGERS = ["=", "+", "-", "@", "\t", "\r"] as const;
export const NEUTRALIZING_PREFIX = "'";

export function neutralizeCell(value: string): string {
  return (FORMULA_TRIGGERS as readonly string[]).includes(value.charAt(0)) ? NEUTRALIZING_PREFIX + value : value;
}

function sqlStringLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * The same rule as `neutralizeCell`, as a SQL expression over a text expression `expr`.
 * ascii() of the first character against integer codes: the cheapest test per row.
 */
export function neutralizeSql(expr: string): string {
  const codes = FORMULA_TRIGGERS.map((c) => c.charCodeAt(0)).join(", ");
  return `(CASE WHEN ascii(${expr}) IN (${codes}) THEN ${sqlStringLiteral(NEUTRALIZING_PREFIX)} || ${expr} ELSE ${expr} END)`;
}

export type CsvCell = string | number | null;
export type CsvColumnKind = "text" | "number" | "timestamp" | "boolean";

/** Renders header + records in the dialect above; text cells are neutralised by kind. */
export function stringifyCsv(columns: { name: string; kind: CsvColumnKind }[], records: CsvCell[][]): string {
  const safe = records.map((record) =>
    record.map((cell, i) => (typeof cell === "string" && columns[i]?.kind === "text" ? neutralizeCell(cell) : cell)),
  );
  return stringify([columns.map((c) => c.name), ...safe], { quoted_match: /^$/, record_delimiter: "unix", cast: { number: (n) => String(n) } });
}

/** e.g. `tokenboard-usage-by-user-2024-03-Europe_Berlin.csv`: month and zone, safe in any file system. */
export function exportFileName(kind: "monthly" | "raw" | "balances", month: string, tz: string): string {
  const zone = tz.replace(/[^A-Za-z0-9_-]+/g, "_");
  const name = { monthly: "usage-by-user", raw: "usage-rows", balances: "balances" }[kind];
  return `tokenboard-${name}-${month}-${zone}.csv`;
}
