/** The bytes of entry (index, term) in the storage crash test: the parent checks every entry against this. */
export function entryData(index: number, term: number): Uint8Array {
  const size = (index * 7 + term * 13) % 300;
  const data = new Uint8Array(size);
  for (let k = 0; k < size; k++) data[k] = (index * 31 + term * 17 + k) & 0xff;
  return data;
}
