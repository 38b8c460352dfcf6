#!/usr/bin/env python3
"""How stale reads from a standby are, as a client that never writes sees them.

Against a running `stockroom serve --read-url …` (scripts/standby-pair.sh makes a primary
and a standby): an admin connection restocks a product by one, and a reader connection,
which never writes and so reads from the standby, asks PRODUCT.GET until it sees the new
stock. The time between the restock's reply and the first read that shows it is the
staleness. Also checks, each round, that the admin (who wrote) reads its own write at once.

  scripts/standby-staleness.py --port 7379 --email admin@example.com --password … --rounds 200
"""
import argparse
import json
import statistics
import time

import redis


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    admin = redis.Redis(port=args.port, decode_responses=True)
    admin.execute_command("SESSION.LOGIN", json.dumps({"email": args.email, "password": args.password}))
    sku = f"STALE-{int(time.time() * 1000)}"
    product = json.loads(admin.execute_command("PRODUCT.CREATE", json.dumps(
        {"sku": sku, "name": "Staleness probe", "description": "", "price_cents": 100, "currency": "EUR", "stock": 1})))
    reader = redis.Redis(port=args.port, decode_responses=True)
    # Until the standby has the product, the reader does not see it.
    while True:
        try:
            reader.execute_command("PRODUCT.GET", product["id"])
            break
        except redis.ResponseError:
            time.sleep(0.001)
    stale, own_misses = [], 0
    for _ in range(args.rounds):
        stock = json.loads(admin.execute_command("PRODUCT.RESTOCK", product["id"], 1))["stock"]
        written = time.monotonic()
        if json.loads(admin.execute_command("PRODUCT.GET", product["id"]))["stock"] != stock:
            own_misses += 1
        while json.loads(reader.execute_command("PRODUCT.GET", product["id"]))["stock"] != stock:
            pass
        stale.append((time.monotonic() - written) * 1000)
        time.sleep(0.005)
    stale.sort()
    print(f"rounds {args.rounds}: a reader that never wrote saw the write after "
          f"median {statistics.median(stale):.2f} ms, p99 {stale[int(len(stale) * 0.99) - 1]:.2f} ms, max {stale[-1]:.2f} ms; "
          f"the writer missed its own write {own_misses} times")


if __name__ == "__main__":
    main()
