// Placeholder: replaced by the deterministic demo-data generator.
export interface DemoDataOptions {
  users: number;
  rows: number;
  days: number;
  seed: number;
  now: Date;
  onProgress?: (done: number, total: number) => void;
}

export interface DemoDataResult {
  rows: number;
  users: number;
  ms: number;
}

export async function generateDemoData(_databaseUrl: string, _options: DemoDataOptions): Promise<DemoDataResult> {
  return { rows: 0, users: 0, ms: 0 };
}
