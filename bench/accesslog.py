#!/usr/bin/env python3
"""Writes a day of the shop's access log (Nginx `combined` + `$request_time` + "$upstream_addr",
the `tend_shop` format of the shipped site) for the report benchmark: N lines spread over 24
hours, product pages, the front page, static files, search, cart and checkout, a few 4xx and 5xx,
a few thousand visitors. Deterministic (seeded), so every run reads the same bytes.

    bench/accesslog.py LINES DATE > access.log      # DATE as YYYY-MM-DD
"""
import datetime
import random
import sys

n = int(sys.argv[1])
day = datetime.date.fromisoformat(sys.argv[2])
rnd = random.Random(17)
months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
stamp = f"{day.day:02d}/{months[day.month - 1]}/{day.year}"
categories = ["tea", "coffee", "accessories", "gifts", "chocolate", "cups"]
agents = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
]
referers = ["-", "-", "-", "https://www.google.com/", "https://shop.example/", "https://shop.example/cart"]
upstreams = ["10.0.1.8:8080", "10.0.1.9:8080"]
visitors = [(f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}", rnd.choice(agents)) for _ in range(5000)]


def target():
    r = rnd.random()
    if r < 0.45:
        return "GET", f"/product/{rnd.choice(categories)}/{rnd.randrange(1, 400)}"
    if r < 0.60:
        return "GET", "/"
    if r < 0.80:
        return "GET", f"/static/{rnd.choice(['app.css', 'app.js', 'logo.svg'])}?v={rnd.randrange(9)}"
    if r < 0.88:
        return "GET", f"/search?q={rnd.choice(categories)}&page={rnd.randrange(1, 5)}"
    if r < 0.95:
        return "POST", "/cart"
    return "POST", "/checkout"


out = sys.stdout
buf = []
for i in range(n):
    secs = i * 86400 // n
    addr, agent = visitors[rnd.randrange(len(visitors))]
    method, path = target()
    r = rnd.random()
    status = 200 if r < 0.95 else (404 if r < 0.985 else (302 if r < 0.995 else 502))
    size = rnd.randrange(200, 40000) if status == 200 else rnd.randrange(0, 600)
    rt = rnd.lognormvariate(-3.5, 0.8)
    up = "-" if path.startswith("/static/") else rnd.choice(upstreams)
    buf.append(
        f'{addr} - - [{stamp}:{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d} +0000] '
        f'"{method} {path} HTTP/1.1" {status} {size} "{rnd.choice(referers)}" "{agent}" {rt:.3f} "{up}"\n'
    )
    if len(buf) == 10000:
        out.write("".join(buf))
        buf.clear()
out.write("".join(buf))
