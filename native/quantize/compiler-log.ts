/**
 * edgetpu_compiler's operation log (<model>_edgetpu.log): one row per
 * operator type and status, e.g.
 *
 *   Operator                       Count      Status
 *   CONV_2D                        52         Mapped to Edge TPU
 *   DEQUANTIZE                     1          Operation is working on an unsupported data type
 *
 * The whole model runs on the Edge TPU only when every row says "Mapped to Edge TPU".
 */

export const MAPPED = 'Mapped to Edge TPU';

export interface CompilerLog {
  version?: string;
  rows: { op: string; count: number; status: string }[];
  /** True when there are rows and every one is mapped. */
  allMapped: boolean;
  /** Operators left to the CPU, by type: "DEQUANTIZE x1 (Operation is working on an unsupported data type)". */
  unmapped: string[];
}

export function parseCompilerLog(text: string): CompilerLog {
  const lines = text.split(/\r?\n/);
  const version = /Edge TPU Compiler version (\S+)/.exec(text)?.[1];
  const header = lines.findIndex((l) => /^\s*Operator\s+Count\s+Status\s*$/.test(l));
  const rows: CompilerLog['rows'] = [];
  if (header >= 0) {
    for (const line of lines.slice(header + 1)) {
      const match = /^\s*([A-Z][A-Z0-9_]*)\s+(\d+)\s+(\S.*?)\s*$/.exec(line);
      if (match) rows.push({ op: match[1], count: Number(match[2]), status: match[3] });
      else if (line.trim() && rows.length) break;
    }
  }
  const unmapped = rows.filter((r) => r.status !== MAPPED).map((r) => `${r.op} x${r.count} (${r.status})`);
  return { ...(version ? { version } : {}), rows, allMapped: rows.length > 0 && unmapped.length === 0, unmapped };
}
