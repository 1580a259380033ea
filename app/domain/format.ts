/** Display formatting; the numbers themselves are computed in SQL. */
const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 });

export function formatInt(n: number): string {
  return integer.format(n);
}

export function formatCompact(n: number): string {
  return compact.format(n);
}

export function formatUsdFromCents(cents: number): string {
  return usd.format(cents / 100);
}

export function formatPercent(ratio: number, digits = 1): string {
  return `${(ratio * 100).toFixed(digits)}%`;
}

/** Cents of any ISO 4217 currency; a code Intl does not know is printed after the amount. */
export function formatMoneyFromCents(cents: number, currency: string): string {
  try {
    return new Intl.NumberFormat("en-US", { style: "currency", currency, minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}
