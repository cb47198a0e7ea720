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

export function setCell(row: HTMLTableRowElement, field: string, value: string | Array<Node | string>): void {
  const cell = row.querySelector<HTMLElement>(`[data-field="${field}"]`)!;
  if (typeof value === 'string') {
    if (cell.textContent !== value) cell.textContent = value;
  } else {
    cell.replaceChildren(...value);
  }
}

/** Makes the body's rows match `keys`, in order, creating missing rows; answers the rows by key. */
export function syncRows(tbody: HTMLTableSectionElement, keys: string[], create: (key: string) => HTMLTableRowElement): Map<string, HTMLTableRowElement> {
  const rows = new Map<string, HTMLTableRowElement>();
  for (const row of [...tbody.rows]) {
    if (keys.includes(row.dataset.key!)) rows.set(row.dataset.key!, row);
    else row.remove();
  }
  // Move a row only when it is out of order: moving a node takes the focus (and a half-typed weight) from it.
  let previous: HTMLTableRowElement | undefined;
  for (const key of keys) {
    const row = rows.get(key) ?? create(key);
    rows.set(key, row);
    const expected = previous ? previous.nextElementSibling : tbody.firstElementChild;
    if (row !== expected) {
      if (previous) previous.after(row);
      else tbody.prepend(row);
    }
    previous = row;
  }
  return rows;
}

/** A row with one cell per field; each cell is labelled with its column's heading, for the narrow layout. */
export function emptyRow(table: HTMLTableElement, key: string, fields: string[]): HTMLTableRowElement {
  const headings = [...table.tHead!.rows[0]!.cells].map((cell) => cell.textContent ?? '');
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
