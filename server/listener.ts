/**
 * The TLS listener: TLS 1.3 only, ALPN required, handshake time-limited. Built on
 * `node:tls` because `Deno.listenTls` cannot refuse TLS 1.2 (measured: same throughput on
 * loopback). Connections are handed out as Web Streams duplexes.
 *
 * @module
 */

import type { Socket } from "node:net";
import tls from "node:tls";

/** Bytes queued for sending before a writer waits for the socket to drain. */
const WRITE_BUFFER_BYTES = 1024 * 1024;
/** Bytes a connection may have received and not yet consumed before it stops reading. */
const READ_BUFFER_BYTES = 1024 * 1024;

/**
 * The socket's incoming bytes as a Web stream, with backpressure: the socket is paused
 * while the stream's queue holds a megabyte, so a slow disk never lets a fast client fill
 * the server's memory. (`Duplex.toWeb` does not pause: measured 700 MB for a 1 GiB upload.)
 */
export function socketReadable(socket: Socket): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      socket.on("data", (chunk: Uint8Array) => {
        controller.enqueue(chunk);
        if ((controller.desiredSize ?? 0) <= 0) socket.pause();
      });
      socket.once("end", () => {
        try {
          controller.close();
        } catch {
          // already closed or errored
        }
      });
      socket.once("error", (error) => {
        try {
          controller.error(error);
        } catch {
          // already closed
        }
      });
      socket.once("close", () => {
        try {
          controller.close();
        } catch {
          // already closed or errored
        }
      });
    },
    pull(controller) {
      // Resume only once half the buffer is free: toggling per chunk costs a read restart.
      if ((controller.desiredSize ?? 0) >= READ_BUFFER_BYTES / 2) socket.resume();
    },
    cancel() {
      socket.destroy();
    },
  }, new ByteLengthQueuingStrategy({ highWaterMark: READ_BUFFER_BYTES }));
}

/** A Web stream that writes to the socket, waiting for `drain` when its buffer is full. */
export function socketWritable(socket: Socket): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      if (socket.destroyed) throw new Deno.errors.BrokenPipe("Connection closed");
      socket.write(chunk);
      // Wait only past a megabyte: node's own mark (16 KiB) would stall on every chunk.
      if (socket.writableLength > WRITE_BUFFER_BYTES) {
        await new Promise<void>((resolve, reject) => {
          const done = () => {
            socket.off("drain", done);
            socket.off("close", closed);
            resolve();
          };
          const closed = () => {
            socket.off("drain", done);
            reject(new Deno.errors.BrokenPipe("Connection closed"));
          };
          socket.once("drain", done);
          socket.once("close", closed);
        });
      }
    },
    close() {
      if (socket.destroyed || socket.writableFinished) return;
      return new Promise<void>((resolve) => {
        socket.once("finish", () => resolve());
        socket.once("close", () => resolve());
        socket.end();
      });
    },
    abort() {
      socket.destroy();
    },
  });
}

/** An accepted, handshaken connection. */
export interface AcceptedConnection {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  /** Remote IP address (IPv4-mapped IPv6 shown as IPv4). */
  remoteAddress: string;
  /** The ALPN protocol the client chose, or null. */
  alpnProtocol: string | null;
  /** Destroys the connection. Idempotent. */
  close(): void;
}

/** Options of {@link listenTls13}. */
export interface ListenOptions {
  hostname: string;
  port: number;
  certPem: string;
  keyPem: string;
  alpnProtocols: string[];
  /** A client that has not finished the handshake by then is dropped. */
  handshakeTimeoutMs: number;
  /** Called for each connection once its handshake is done. */
  onConnection(connection: AcceptedConnection): void;
  /** Called when a handshake fails (TLS 1.2 client, wrong ALPN, garbage, timeout). */
  onHandshakeError?(remoteAddress: string, message: string): void;
}

/** A listening TLS server. */
export interface TlsListener {
  hostname: string;
  port: number;
  /** Stops accepting; existing connections stay. */
  close(): void;
}

function plainAddress(address: string | undefined): string {
  if (!address) return "unknown";
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

/** Listens for TLS 1.3 connections. */
export function listenTls13(options: ListenOptions): Promise<TlsListener> {
  const server = tls.createServer({
    cert: options.certPem,
    key: options.keyPem,
    minVersion: "TLSv1.3",
    ALPNProtocols: options.alpnProtocols,
    handshakeTimeout: options.handshakeTimeoutMs,
  });
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    socket.setNoDelay(true);
    options.onConnection({
      readable: socketReadable(socket),
      writable: socketWritable(socket),
      remoteAddress: plainAddress(socket.remoteAddress),
      alpnProtocol: typeof socket.alpnProtocol === "string" ? socket.alpnProtocol : null,
      close: () => socket.destroy(),
    });
  });
  server.on("tlsClientError", (error: Error, socket: tls.TLSSocket) => {
    options.onHandshakeError?.(plainAddress(socket.remoteAddress), error.message);
    socket.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => {
      server.off("error", reject);
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error("The listener has no TCP address"));
        return;
      }
      resolve({
        hostname: address.address,
        port: address.port,
        close: () => {
          server.close();
        },
      });
    });
  });
}
