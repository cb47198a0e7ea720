// Each worker keeps one colour for the page's life: its swatch in the table and legend, its line in the charts.
import { make } from './dom.js';

const palette = ['#3b5bdb', '#e8590c', '#2b8a3e', '#ae3ec9', '#c92a2a', '#1098ad', '#f08c00', '#5c940d', '#d6336c', '#495057'];
const colors = new Map<string, string>();

export function colorOf(workerId: string): string {
  let color = colors.get(workerId);
  if (color === undefined) {
    color = palette[colors.size % palette.length]!;  // An index modulo the palette's length is in it.
    colors.set(workerId, color);
  }
  return color;
}

export function swatch(workerId: string): HTMLSpanElement {
  const node = make('span', { className: 'swatch' });
  node.style.background = colorOf(workerId);
  return node;
}
