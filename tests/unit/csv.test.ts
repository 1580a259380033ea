import { parse } from "csv-parse/sync";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { exportFileName, FORMULA_TRIGGERS, neutralizeCell, neutralizeSql, stringifyCsv } from "~/domain/csv";

describe("formula neutralisation", () => {
  it.each(["=SUM(A1:A9)", "+1", "-2+3", "@cmd", "\tx", "\rx"])("a text cell starting with %j gets a leading apostrophe", (value) => {
    expect(neutralizeCell(value)).toBe(`'${value}`);
  });

  it.each(["maria@example.com", "chat_conversation", "", "'quoted", " =spaced"])("a text cell starting with anything else is left alone: %j", (value) => {
    expect(neutralizeCell(value)).toBe(value);
  });

  it("the SQL form tests the code of every trigger character and prefixes the same apostrophe", () => {
    const expr = neutralizeSql("x");
    expect(expr).toContain(`ascii(x) IN (${FORMULA_TRIGGERS.map((c) => c.charCodeAt(0)).join(", ")})`);
    expect(expr).toContain("THEN '''' || x ELSE x END");
  });
});

describe("stringifyCsv", () => {
  const columns = [
    { name: "user_id", kind: "text" as const },
    { name: "tokens_used", kind: "number" as const },
    { name: "note", kind: "text" as const },
  ];

  it("writes the header first and neutralises text cells but not numbers", () => {
    const text = stringifyCsv(columns, [["=1+1", -500, "-oops"]]);
    expect(text).toBe("user_id,tokens_used,note\n'=1+1,-500,'-oops\n");
  });

  it("quotes commas, quotes and line breaks as RFC 4180 says, and writes null as an empty field but the empty string as \"\"", () => {
    const text = stringifyCsv(columns, [["a,b", 1, 'say "hi"\nthen go'], [null, null, ""]]);
    expect(text).toBe('user_id,tokens_used,note\n"a,b",1,"say ""hi""\nthen go"\n,,""\n');
  });

  it("round-trips any text through a CSV parser as the neutralised value", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string(), fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.string({ unit: "binary" })), { minLength: 1, maxLength: 8 }), (rows) => {
        const parsed = parse(stringifyCsv(columns, rows), { columns: true }) as Record<string, string>[];
        expect(parsed).toHaveLength(rows.length);
        rows.forEach(([a, n, b], i) => {
          expect(parsed[i]).toEqual({ user_id: neutralizeCell(a), tokens_used: String(n), note: neutralizeCell(b) });
        });
      }),
      { numRuns: 60 },
    );
  }, 30_000);
});

describe("exportFileName", () => {
  it("names the month and the zone without path separators", () => {
    expect(exportFileName("monthly", "2024-03", "America/New_York")).toBe("tokenboard-usage-by-user-2024-03-America_New_York.csv");
    expect(exportFileName("raw", "2024-03", "Etc/GMT+5")).toBe("tokenboard-usage-rows-2024-03-Etc_GMT_5.csv");
  });
});
