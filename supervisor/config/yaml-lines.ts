import fs from 'node:fs';
import { isMap, isNode, isScalar, LineCounter, parseDocument, type Document } from 'yaml';

/** A config file's YAML, kept with its positions so a problem's key can be given a line number. */
export class YamlLines {
  private readonly doc: Document;
  private readonly counter = new LineCounter();

  constructor(text: string) {
    this.doc = parseDocument(text, { lineCounter: this.counter, uniqueKeys: false });
  }

  static ofFile(file: string): YamlLines | undefined {
    try {
      return new YamlLines(fs.readFileSync(file, 'utf8'));
    } catch {
      return undefined;
    }
  }

  /**
   * The line of `path`'s value (of its key when `key`), or of the nearest enclosing node that
   * exists (a missing key is reported where its mapping is).
   */
  lineOf(path: readonly PropertyKey[], key = false): number | undefined {
    for (let n = path.length; n >= 0; n--) {
      const sub = path.slice(0, n);
      if (key && n === path.length && n > 0) {
        const parent = n === 1 ? this.doc.contents : this.doc.getIn(sub.slice(0, -1), true);
        const pair = isMap(parent) ? parent.items.find((i) => isScalar(i.key) && i.key.value === sub.at(-1)) : undefined;
        if (pair && isNode(pair.key) && pair.key.range) return this.counter.linePos(pair.key.range[0]).line;
        continue;
      }
      const node = n === 0 ? this.doc.contents : this.doc.getIn(sub, true);
      if (isNode(node) && node.range) return this.counter.linePos(node.range[0]).line;
    }
    return undefined;
  }

  /** `a.b[0].c` → its line, for problems a child reports by key path. */
  lineOfLabel(label: string): number | undefined {
    const path: PropertyKey[] = [];
    for (const m of label.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) path.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
    return path.length > 0 ? this.lineOf(path) : undefined;
  }
}
