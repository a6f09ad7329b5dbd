import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { expect, test } from 'vitest';
import { closableServer } from '../../src/publish/connections.ts';

function listen() {
  // Node's default request timeouts (60 s for headers): only the shutdown grace can end the client.
  const server = createServer((_req, res) => res.end('ok\n'));
  const closable = closableServer(server);
  return new Promise<{ closable: typeof closable; port: number }>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ closable, port: (server.address() as AddressInfo).port })),
  );
}

function slowClient(port: number): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      // Headers never finished: the connection is neither idle nor answered.
      socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
      resolve({ socket, received: () => received, closed });
    });
    let received = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('error', () => undefined);
  });
}

test('close() ends a connection whose client never finishes its headers, by cutting it after the grace', async () => {
  const { closable, port } = await listen();
  const client = await slowClient(port);
  await expect.poll(() => closable.openConnections).toBe(1);
  await closable.close(50);
  await client.closed;
  await expect.poll(() => closable.openConnections).toBe(0);
  // Cut by the shutdown, not answered by a request timeout (which would have sent a 408).
  expect(client.received()).toBe('');
});

test('close() closes idle keep-alive connections at once', async () => {
  const { closable, port } = await listen();
  const idle = await new Promise<Socket>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    socket.once('data', () => resolve(socket));
  });
  const idleClosed = new Promise<void>((done) => idle.once('close', () => done()));
  // A grace far beyond the test's timeout: only closing the idle connection lets close() resolve.
  await closable.close(3_600_000);
  await idleClosed;
});
