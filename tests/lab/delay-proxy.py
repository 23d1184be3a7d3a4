#!/usr/bin/env python3
"""A TCP proxy that holds every chunk going back to the client for a fixed time: a slow link
for the lab, whose kernel has no `netem`. Used by the fault tests inside a host's namespace,
behind an nft redirect.

With `serial`, connections are served one at a time, each held DELAY_MS: a saturated server
whose requests queue (the load tests' slow app host).

usage: delay-proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS [serial]
"""
import asyncio
import sys
import time


async def pump(reader, writer, delay):
    """Copies reader to writer, each chunk sent `delay` seconds after it arrived (in order)."""
    queue = asyncio.Queue()

    async def read():
        while True:
            data = await reader.read(65536)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                return

    async def write():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    await asyncio.gather(read(), write(), return_exceptions=True)


async def main(port, host, target_port, delay, serial):
    one_at_a_time = asyncio.Lock()

    async def handle(client_r, client_w):
        if serial:
            async with one_at_a_time:
                await serve(client_r, client_w)
        else:
            await serve(client_r, client_w)

    async def serve(client_r, client_w):
        try:
            server_r, server_w = await asyncio.open_connection(host, target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            pump(client_r, server_w, 0.0),
            pump(server_r, client_w, delay),
            return_exceptions=True,
        )
        for w in (client_w, server_w):
            w.close()

    server = await asyncio.start_server(handle, "0.0.0.0", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    listen, host, target, ms = sys.argv[1:5]
    asyncio.run(main(int(listen), host, int(target), int(ms) / 1000.0, sys.argv[5:6] == ["serial"]))
