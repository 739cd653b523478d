import { ConfigError } from '../errors.js';

/** A parsed `host:port`. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const SCHEMES = new Set(['tcp:', 'tls:', 'http:', 'https:']);
/** URL drops a scheme's default port from `url.port`. */
const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443 };

/**
 * Parses a peer or listen address: `host:port`, `[::1]:port`, or a URL with scheme `tcp://`,
 * `tls://`, `http://` or `https://` (etcd-style peer URLs). The scheme only names the form;
 * whether TLS is used is decided by the transport's `tls` option. Throws {@link ConfigError}.
 */
export function parseAddress(address: string, what = 'address'): HostPort {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `tcp://${address}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ConfigError(`${what} ${JSON.stringify(address)} must be host:port`);
  }
  if (!SCHEMES.has(url.protocol)) {
    throw new ConfigError(`${what} ${JSON.stringify(address)} must use tcp://, tls://, http:// or https://`);
  }
  const defaultPort = DEFAULT_PORTS[url.protocol];
  if (url.port === '' && defaultPort === undefined) {
    throw new ConfigError(`${what} ${JSON.stringify(address)} must name a port`);
  }
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw new ConfigError(`${what} ${JSON.stringify(address)} must be host:port without a path`);
  }
  const port = url.port === '' ? defaultPort! : Number(url.port);
  // URL keeps brackets around IPv6 hosts; sockets want them bare.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (host === '') throw new ConfigError(`${what} ${JSON.stringify(address)} must name a host`);
  return { host, port };
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatAddress(a: HostPort): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
