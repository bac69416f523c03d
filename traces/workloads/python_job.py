"""A Python data-processing job for recording: build a table of synthetic
sales records, parse it back from CSV text, aggregate, join, sort and keep
the results, in phases of a few seconds each (about 20 s in all)."""

import csv
import io
import random
import statistics
import time

rng = random.Random(7)
CITIES = [f"city-{i:03d}" for i in range(300)]
PRODUCTS = [f"product-{i:04d}" for i in range(2000)]

# Phase 1: generate rows and render them as CSV text.
rows = [(i, rng.choice(CITIES), rng.choice(PRODUCTS), rng.randint(1, 20),
         round(rng.uniform(0.5, 500.0), 2)) for i in range(60_000)]
buffer = io.StringIO()
csv.writer(buffer).writerows(rows)
text = buffer.getvalue()
del rows
time.sleep(2)

# Phase 2: parse the text back into dicts.
records = [{"id": int(r[0]), "city": r[1], "product": r[2], "qty": int(r[3]),
            "price": float(r[4])} for r in csv.reader(io.StringIO(text))]
time.sleep(2)

# Phase 3: aggregate by city and by product.
by_city, by_product = {}, {}
for r in records:
    revenue = r["qty"] * r["price"]
    by_city.setdefault(r["city"], []).append(revenue)
    by_product[r["product"]] = by_product.get(r["product"], 0.0) + revenue
summary = {city: (len(v), sum(v), statistics.median(v)) for city, v in by_city.items()}
time.sleep(2)

# Phase 4: a join against a product catalogue, then a sort of everything.
catalogue = {p: {"name": p.upper(), "weight": rng.random() * 10} for p in PRODUCTS}
joined = [(r["id"], r["city"], catalogue[r["product"]]["name"], r["qty"] * r["price"])
          for r in records]
joined.sort(key=lambda t: (-t[3], t[0]))
del records, text
time.sleep(2)

# Phase 5: keep the top results and a report string, drop the rest.
top = joined[:20_000]
del joined
report = "\n".join(f"{city}: {n} sales, {total:.2f} total, {median:.2f} median"
                   for city, (n, total, median) in sorted(summary.items()))
time.sleep(3)
print(len(top), len(report), len(by_product))
