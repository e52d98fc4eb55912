const SCALAR = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null|"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
/** How far a misspelt literal got: the error is at the first wrong letter, as V8 reports it. */
const PARTIAL = /t(?:ru?)?|f(?:a(?:ls?)?)?|n(?:ul?)?/y;
const SPACE = /[ \t\n\r]*/y;
const KEY = /[ \t\n\r]*"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"[ \t\n\r]*:/y;

/**
 * The offset at which `text` stops being JSON, or -1 when it is JSON. V8's JSON.parse names the
 * position for most errors but not for an unexpected token, and whoever wrote the request needs it.
 */
export function jsonErrorOffset(text: string): number {
  const closers: string[] = [];
  let i = 0;
  const match = (re: RegExp): boolean => {
    re.lastIndex = i;
    if (!re.test(text)) return false;
    i = re.lastIndex;
    return true;
  };
  for (;;) {
    match(SPACE);
    const open = text[i];
    if (open === '{' || open === '[') {
      i++;
      match(SPACE);
      const close = open === '{' ? '}' : ']';
      if (text[i] === close) i++;
      else {
        closers.push(close);
        if (open === '{' && !match(KEY)) return i;
        continue;
      }
    } else if (!match(SCALAR)) {
      match(PARTIAL);
      return i;
    }
    // After a value: close what ends here, then a comma leads to the next value.
    for (;;) {
      match(SPACE);
      const close = closers.at(-1);
      if (close === undefined) return i < text.length ? i : -1;
      if (text[i] === close) {
        i++;
        closers.pop();
        continue;
      }
      if (text[i] !== ',') return i;
      i++;
      if (close === '}' && !match(KEY)) return i;
      break;
    }
  }
}

/** JSON.parse's complaint about `text`, always with the position (and line and column) where it went wrong. */
export function describeJsonError(text: string, err: Error): string {
  if (/at position \d+/.test(err.message)) return err.message;
  const at = Math.max(0, jsonErrorOffset(text));
  const before = text.slice(0, at).split('\n');
  return `${err.message} at position ${at} (line ${before.length} column ${before.at(-1)!.length + 1})`;
}
