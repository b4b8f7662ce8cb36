// The life of a bench helper server run as a child process (fork): it reports its port to
// the parent over IPC ({ port }), and exits when the parent disconnects or on SIGTERM.

/** Listens on PORT/HOST (default: any port on 127.0.0.1) and ties the process's life to the parent's. */
export function serveAsChild(server, name) {
  server.headersTimeout = 60_000;
  server.requestTimeout = 0;
  function shutdown() {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2_000).unref();
  }
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  process.on("disconnect", shutdown);
  server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1", () => {
    const { port } = server.address();
    if (process.send) process.send({ port });
    else console.log(JSON.stringify({ msg: `${name} listening`, port }));
  });
}
