// Unit tests: links to a moment (`?t=`).
import { describe, expect, it } from 'vitest';
import { momentOf, momentParam } from '../src/lib/moment';

describe('links to a moment', () => {
  const origin = 1_790_000_000_000;
  it('reads seconds into the session and absolute milliseconds', () => {
    expect(momentOf('12.4', origin)).toBe(origin + 12_400);
    expect(momentOf('0', origin)).toBe(origin);
    expect(momentOf(String(origin + 5000), origin)).toBe(origin + 5000);
  });
  it('ignores what is not a time', () => {
    for (const t of [null, '', 'abc', '-3', 'Infinity']) expect(momentOf(t, origin)).toBeNull();
  });
  it('writes seconds with one decimal, never negative, and reads back what it writes', () => {
    expect(momentParam(origin + 12_345, origin)).toBe('12.3');
    expect(momentParam(origin - 10, origin)).toBe('0.0');
    expect(momentOf(momentParam(origin + 7_000, origin), origin)).toBe(origin + 7_000);
  });
});
