// Small DOM helpers: rows are kept per key, and only their cells' text changes, so inputs keep focus.

export const byId = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

export function make<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

export function pill(text: string, kind = text): HTMLSpanElement {
  const node = make('span', { className: 'pill', textContent: text });
  node.dataset.state = kind;
  return node;
}

/** The cell of `field` in a row made by emptyRow. */
export function cellOf(row: HTMLTableRowElement, field: string): HTMLElement {
  const cell = row.querySelector<HTMLElement>(`[data-field="${field}"]`);
  if (!cell) throw new Error(`the row "${row.dataset.key ?? ''}" has no "${field}" cell`);
  return cell;
}

export function setCell(row: HTMLTableRowElement, field: string, value: string | Array<Node | string>): void {
  const cell = cellOf(row, field);
  if (typeof value === 'string') {
    if (cell.textContent !== value) cell.textContent = value;
  } else {
    cell.replaceChildren(...value);
  }
}

/**
 * Makes the table body's rows match `items`, in order, one row per key (`keyOf`), creating missing rows;
 * answers each item with its row.
 */
export function syncRows<T>(table: HTMLTableElement, items: readonly T[], keyOf: (item: T) => string, create: (key: string) => HTMLTableRowElement): Array<[T, HTMLTableRowElement]> {
  const tbody = table.tBodies[0] ?? table.createTBody();
  const keys = new Set(items.map(keyOf));
  const existing = new Map<string, HTMLTableRowElement>();
  for (const row of [...tbody.rows]) {
    const key = row.dataset.key;
    if (key !== undefined && keys.has(key)) existing.set(key, row);
    else row.remove();
  }
  // Move a row only when it is out of order: moving a node takes the focus (and a half-typed weight) from it.
  const rows: Array<[T, HTMLTableRowElement]> = [];
  let previous: HTMLTableRowElement | undefined;
  for (const item of items) {
    const key = keyOf(item);
    const row = existing.get(key) ?? create(key);
    existing.set(key, row);
    const expected = previous ? previous.nextElementSibling : tbody.firstElementChild;
    if (row !== expected) {
      if (previous) previous.after(row);
      else tbody.prepend(row);
    }
    rows.push([item, row]);
    previous = row;
  }
  return rows;
}

/** A row with one cell per field; each cell is labelled with its column's heading, for the narrow layout. */
export function emptyRow(table: HTMLTableElement, key: string, fields: string[]): HTMLTableRowElement {
  const headings = [...table.tHead?.rows[0]?.cells ?? []].map((cell) => cell.textContent ?? '');
  const row = make('tr');
  row.dataset.key = key;
  fields.forEach((field, index) => {
    const cell = make('td');
    cell.dataset.field = field;
    cell.dataset.label = headings[index] ?? '';
    row.append(cell);
  });
  return row;
}
