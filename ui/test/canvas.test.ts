// Unit tests: which recorded canvas mutations the replay paints (lib/canvas.ts); the painting itself is
// checked in Chromium by e2e/canvas.e2e.test.mjs.
import { describe, expect, it } from 'vitest';
import { canvasFrame } from '../src/lib/canvas';

// A frame as rrweb's FPS canvas recording (the recorder's recordCanvas) emits it.
const frame = (drawArgs: unknown[] = [0, 0]) => ({
  source: 9, id: 12, type: 0,
  commands: [
    { property: 'clearRect', args: [0, 0, 100, 50] },
    { property: 'drawImage', args: [{ rr_type: 'ImageBitmap', args: [{ rr_type: 'Blob', data: [{ rr_type: 'ArrayBuffer', base64: 'UklGRg==' }], type: 'image/webp' }] }, ...drawArgs] },
  ],
});

describe('canvas frames', () => {
  it('reads a frame: the image of the whole canvas', () => {
    const read = { id: 12, width: 100, height: 50, image: { base64: 'UklGRg==', type: 'image/webp' } };
    expect(canvasFrame(frame())).toEqual(read);
    expect(canvasFrame(frame([0, 0, 100, 50]))).toEqual(read);
  });
  it('names the kinds it does not paint', () => {
    expect(canvasFrame({ source: 9, id: 3, type: 1, commands: [{ property: 'clear', args: [16384] }] })).toEqual({ unsupported: 'webgl' });
    expect(canvasFrame({ source: 9, id: 3, type: 2, property: 'drawArrays', args: [4, 0, 3] })).toEqual({ unsupported: 'webgl2' });
    // 2D calls one by one (rrweb's sampling 'all'), a frame with another call, a setter, odd arguments.
    expect(canvasFrame({ source: 9, id: 3, type: 0, property: 'fillRect', args: [0, 0, 5, 5] })).toEqual({ unsupported: '2d' });
    const other = frame();
    other.commands.push({ property: 'fillRect', args: [0, 0, 5, 5] });
    expect(canvasFrame(other)).toEqual({ unsupported: '2d' });
    const setter = frame();
    (setter.commands[0] as any).setter = true;
    expect(canvasFrame(setter)).toEqual({ unsupported: '2d' });
    expect(canvasFrame(frame([0]))).toEqual({ unsupported: '2d' });
    expect(canvasFrame(frame([1, 2]))).toEqual({ unsupported: '2d' }); // a part of the canvas
    expect(canvasFrame(frame([0, 0, 30, 40]))).toEqual({ unsupported: '2d' });
    const offset = frame();
    offset.commands[0].args = [5, 0, 100, 50];
    expect(canvasFrame(offset)).toEqual({ unsupported: '2d' });
    expect(canvasFrame(frame(['0', 0]))).toEqual({ unsupported: '2d' });
    expect(canvasFrame(null)).toEqual({ unsupported: '2d' });
  });
});
