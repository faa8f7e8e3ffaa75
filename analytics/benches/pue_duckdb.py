"""The DuckDB side of `cargo bench -p tidewatch-analytics --bench pue_duckdb`.

Monthly energy PUE per centre and for the park, and its daily breakdown, in SQL over
the embedded store's Parquet files (`<dir>/data/<measurement>/<UTC day>/part-*.parquet`),
with the counter rules of `analytics/src/counters.rs` written as window functions.

Run by the bench as one process for all rounds (`python3 pue_duckdb.py --serve`): it
reads the path of a JSON spec per line on stdin and answers with the result rows and
one `done <seconds> <rows read>` line. The seconds are measured here, from
`duckdb.connect()` to the last result row fetched: listing the day partitions,
reading the Parquet files and the whole SQL; interpreter start-up and `import duckdb`
are outside it. Every round uses a fresh in-memory connection (no state kept between
rounds but the operating system's page cache).

The spec: `data_dir`, `window` [start, end) Unix ns, `utc_offset_ns`, the counter rules
(`max_gap_ns`, `reset_drop_ratio`, `spike_power_factor`, `max_power_kw`), the park's
id, the centres, and the meters (`id`, `measurement`, `field`, `wrap_kwh`, `rated_kw`,
`centre`, `side` = facility or it) exactly as the inventory and the PUE configuration
give them.

The rules, as in counters.rs, over each meter's readings in time order:

- readings that are NULL, NaN, infinite or negative are dropped;
- pass 1, with LAG/LEAD over the remaining readings, drops single bad readings:
  an upward spike (a rise above the meter's limit, `spike_power_factor` x rated kW x
  hours, whose next reading is back between the two, within the limit), a downward
  spike (a drop of more than `reset_drop_ratio`, or a zero, whose next reading is back
  at or above the previous one within the limit), and a small drop (not more than
  `reset_drop_ratio`, and not a plausible rollover);
- pass 2, with LAG over what remains: a rise within the limit is the interval's
  energy, above it a jump (unknown energy); a drop is a rollover when
  `reading + wrap_kwh - previous` is plausible (within the limit; without a limit,
  under 1 % of the register's range), otherwise a reset whose energy is the new
  reading (unknown if that is above the limit);
- an interval is covered when its energy is known and it is not longer than
  `max_gap_ns`.

Then, per scope (each centre, the park: the facility and IT meters of all centres),
the time every one of its meters covers, from a sweep over the meters' covered runs;
each covered interval's energy is split over the local days (UTC + offset) it
overlaps in proportion to time (pro rata, as `energy_within` does), minus its part in
the time not covered by every meter of the scope; a month is the sum of its days.
PUE = facility / IT when the common covered time and the IT energy are positive.

Simplification (documented in the bench and BENCHMARKS.md): the rules that look at
more than one reading ahead are not reproduced. counters.rs keeps the last accepted
reading as the baseline while it drops readings; here the LAG of pass 2 is the last
kept reading, which is the same thing as long as dropped readings are isolated (no two
in a row): a run of several zeros (an outage written as zeros), or two spikes in a
row, would be judged differently. Readings with equal times are assumed absent (the
store keeps one row per series and time). `max_gap_ns` must not exceed a day (a
covered interval then touches at most two local days).
"""

import json
import os
import sys
import time

try:
    import duckdb
except ImportError:  # the bench installs it first; this is for a run by hand
    sys.exit("pue_duckdb.py needs the duckdb package: python3 -m pip install duckdb")

DAY_NS = 86_400_000_000_000
NS_PER_HOUR = 3_600_000_000_000.0


def utc_day(ns):
    return time.strftime("%Y-%m-%d", time.gmtime(ns // 1_000_000_000))


def files_for(data_dir, measurement, first_ns, last_ns):
    """The Parquet files of the day partitions (UTC days) the range touches."""
    root = os.path.join(data_dir, measurement)
    if not os.path.isdir(root):
        return []
    lo, hi = utc_day(first_ns), utc_day(last_ns)
    out = []
    for day in sorted(os.listdir(root)):
        if lo <= day <= hi:
            part = os.path.join(root, day)
            out.extend(
                os.path.join(part, f)
                for f in sorted(os.listdir(part))
                if f.startswith("part-") and f.endswith(".parquet")
            )
    return out


def quote(s):
    return "'" + str(s).replace("'", "''") + "'"


def ident(s):
    return '"' + str(s).replace('"', '""') + '"'


def run(spec):
    w0, w1 = spec["window"]
    gap = int(spec["max_gap_ns"])
    if gap > DAY_NS:
        raise SystemExit("max_gap_ns above a day is not supported")
    off = int(spec["utc_offset_ns"])
    ratio = float(spec["reset_drop_ratio"])
    factor = float(spec["spike_power_factor"])
    max_kw = spec.get("max_power_kw")
    r0, r1 = w0 - gap, w1 + gap + 1  # the range counters.rs reads: [r0, r1)

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TEMP TABLE meters (mid INTEGER, id VARCHAR, wrap_kwh DOUBLE, "
        "limit_kw DOUBLE, centre VARCHAR, side VARCHAR)"
    )
    # Meters get an integer key (`mid`): the window functions partition by it.
    rows = []
    for mid, m in enumerate(spec["meters"]):
        limit = m.get("rated_kw")
        limit = limit * factor if limit is not None else max_kw
        rows.append((mid, m["id"], m.get("wrap_kwh"), limit, m["centre"], m["side"]))
    con.executemany("INSERT INTO meters VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.execute(
        "CREATE TEMP TABLE scope_meters AS "
        "SELECT centre AS scope, mid, side FROM meters UNION ALL "
        f"SELECT {quote(spec['park'])} AS scope, mid, side FROM meters"
    )
    con.execute(
        "CREATE TEMP TABLE scopes AS SELECT scope, count(DISTINCT mid) AS n "
        "FROM scope_meters GROUP BY scope"
    )

    # The readings: one Parquet scan per (measurement, field), only the device, time
    # and counter columns, the range and the meters wanted.
    groups = {}
    for m in spec["meters"]:
        groups.setdefault((m["measurement"], m["field"]), []).append(m["id"])
    parts = []
    for (measurement, field), ids in sorted(groups.items()):
        files = files_for(spec["data_dir"], measurement, r0, r1 - 1)
        if not files:
            continue
        parts.append(
            f"SELECT m.mid, epoch_ns(p.time) AS t, CAST(p.{ident(field)} AS DOUBLE) AS v, "
            f"m.limit_kw AS lim, m.wrap_kwh AS wrap "
            f"FROM read_parquet([{', '.join(quote(f) for f in files)}], union_by_name = true) p "
            f"JOIN meters m ON m.id = p.device "
            f"WHERE epoch_ns(p.time) >= {r0} AND epoch_ns(p.time) < {r1} "
            f"AND p.device IN ({', '.join(quote(i) for i in ids)})"
        )
    if parts:
        con.execute("CREATE TEMP TABLE readings AS " + " UNION ALL ".join(parts))
    else:
        con.execute(
            "CREATE TEMP TABLE readings "
            "(mid INTEGER, t BIGINT, v DOUBLE, lim DOUBLE, wrap DOUBLE)"
        )
    rows_read = con.execute("SELECT count(*) FROM readings").fetchone()[0]

    # plausible(kWh over t0..t1) as counters.rs: kwh >= 0 and, with a limit, at most
    # limit_kw x hours.
    con.execute(
        "CREATE MACRO plausible(kwh, lim, t0, t1) AS "
        f"kwh >= 0 AND (lim IS NULL OR kwh <= lim * (t1 - t0) / {NS_PER_HOUR})"
    )
    con.execute(
        "CREATE MACRO rolls(v, pv, t, pt, lim, wrap) AS "
        "wrap IS NOT NULL AND CASE WHEN lim IS NOT NULL "
        "THEN plausible(v + wrap - pv, lim, pt, t) "
        "ELSE v + wrap - pv >= 0 AND v + wrap - pv < 0.01 * wrap END"
    )
    # Pass 1: single bad readings dropped.
    con.execute(
        f"""
        CREATE TEMP TABLE kept AS
        WITH w AS (
            SELECT mid, t, v, lim, wrap,
                   lag(v) OVER d AS pv, lag(t) OVER d AS pt,
                   lead(v) OVER d AS nv, lead(t) OVER d AS nt
            FROM readings
            WHERE v IS NOT NULL AND isfinite(v) AND v >= 0
            WINDOW d AS (PARTITION BY mid ORDER BY t)
        )
        SELECT mid, t, v, lim, wrap FROM w
        WHERE pv IS NULL OR NOT (
            -- upward spike
            (v >= pv AND NOT plausible(v - pv, lim, pt, t)
                AND nv IS NOT NULL AND nv < v AND nv >= pv AND plausible(nv - pv, lim, pt, nt))
            -- downward spike (a single zero whose next reading is back, too)
            OR (v < pv AND (pv - v) / pv > {ratio}
                AND nv IS NOT NULL AND nv >= pv AND plausible(nv - pv, lim, pt, nt))
            -- small drop
            OR (v < pv AND (pv - v) / pv <= {ratio} AND NOT rolls(v, pv, t, pt, lim, wrap))
        )
        """
    )
    # Pass 2: the intervals, their energy and whether they count; the covered
    # interval's neighbours' state, to find the runs of covered time.
    con.execute(
        "CREATE MACRO iv_kwh(v, pv, t, pt, lim, wrap) AS CASE "
        "WHEN v >= pv THEN CASE WHEN plausible(v - pv, lim, pt, t) THEN v - pv END "
        "WHEN rolls(v, pv, t, pt, lim, wrap) THEN v + wrap - pv "
        "WHEN plausible(v, lim, pt, t) THEN v END"
    )
    con.execute(
        f"CREATE MACRO iv_covered(v, pv, t, pt, lim, wrap) AS "
        f"pv IS NOT NULL AND t - pt <= {gap} AND iv_kwh(v, pv, t, pt, lim, wrap) IS NOT NULL"
    )
    con.execute(
        """
        CREATE TEMP TABLE iv AS
        WITH w AS (
            SELECT mid, t, v, lim, wrap,
                   lag(v) OVER d AS pv, lag(t) OVER d AS pt,
                   lag(v, 2) OVER d AS ppv, lag(t, 2) OVER d AS ppt,
                   lead(v) OVER d AS nv, lead(t) OVER d AS nt
            FROM kept
            WINDOW d AS (PARTITION BY mid ORDER BY t)
        )
        SELECT mid, pt AS s, t AS e, iv_kwh(v, pv, t, pt, lim, wrap) AS kwh,
               NOT iv_covered(pv, ppv, pt, ppt, lim, wrap) AS run_starts,
               NOT iv_covered(nv, v, nt, t, lim, wrap) AS run_ends
        FROM w
        WHERE iv_covered(v, pv, t, pt, lim, wrap)
        """
    )
    # The time every meter of a scope covers: a sweep over the runs of covered
    # intervals (+1 where a meter's run starts, -1 where it ends); the spans where
    # fewer than all of them cover, within the window, are `uncommon`.
    con.execute(
        f"""
        CREATE TEMP TABLE uncommon AS
        WITH ev AS (
            SELECT sm.scope, i.s AS t, 1 AS d FROM iv i JOIN scope_meters sm ON sm.mid = i.mid
            WHERE i.run_starts
            UNION ALL
            SELECT sm.scope, i.e AS t, -1 AS d FROM iv i JOIN scope_meters sm ON sm.mid = i.mid
            WHERE i.run_ends
            UNION ALL SELECT scope, {w0}, 0 FROM scopes
            UNION ALL SELECT scope, {w1}, 0 FROM scopes
        ), steps AS (
            SELECT scope, t, sum(d) AS d FROM ev GROUP BY scope, t
        ), counts AS (
            SELECT scope, t, sum(d) OVER (PARTITION BY scope ORDER BY t) AS covering,
                   lead(t) OVER (PARTITION BY scope ORDER BY t) AS t_next
            FROM steps
        )
        SELECT c.scope, greatest(c.t, {w0}) AS s, least(c.t_next, {w1}) AS e
        FROM counts c JOIN scopes USING (scope)
        WHERE c.t_next IS NOT NULL AND c.covering < scopes.n
          AND c.t < {w1} AND c.t_next > {w0}
        """
    )
    # Local days of the window, cut to it.
    con.execute(
        f"""
        CREATE TEMP TABLE days AS
        SELECT day,
               strftime(DATE '1970-01-01' + CAST(day AS INTEGER), '%Y-%m-%d') AS label,
               strftime(DATE '1970-01-01' + CAST(day AS INTEGER), '%Y-%m') AS month,
               greatest(day * {DAY_NS} - {off}, {w0}) AS ds,
               least((day + 1) * {DAY_NS} - {off}, {w1}) AS de
        FROM range({(w0 + off) // DAY_NS}, {(w1 - 1 + off) // DAY_NS + 1}) r(day)
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE uncommon_days AS
        SELECT u.scope, d.day, greatest(u.s, d.ds) AS s, least(u.e, d.de) AS e
        FROM uncommon u JOIN days d ON u.s < d.de AND u.e > d.ds
        """
    )
    # Each covered interval's energy per local day (pro rata), per meter...
    con.execute(
        f"""
        CREATE TEMP TABLE meter_days AS
        WITH parts AS (
            SELECT mid, kwh, s, e,
                   (s + {off}) // {DAY_NS} AS day
            FROM iv
            UNION ALL
            SELECT mid, kwh, s, e,
                   (e - 1 + {off}) // {DAY_NS} AS day
            FROM iv
            WHERE (e - 1 + {off}) // {DAY_NS} > (s + {off}) // {DAY_NS}
        )
        SELECT p.mid, p.day,
               sum(p.kwh * (least(p.e, d.de) - greatest(p.s, d.ds)) / (p.e - p.s)) AS kwh
        FROM parts p JOIN days d USING (day)
        WHERE least(p.e, d.de) > greatest(p.s, d.ds)
        GROUP BY p.mid, p.day
        """
    )
    # ... per scope and side, less the parts in the time not every meter covers.
    result = con.execute(
        """
        WITH total AS (
            SELECT sm.scope, md.day,
                   sum(CASE WHEN sm.side = 'facility' THEN md.kwh ELSE 0 END) AS facility,
                   sum(CASE WHEN sm.side = 'it' THEN md.kwh ELSE 0 END) AS it
            FROM meter_days md JOIN scope_meters sm ON sm.mid = md.mid
            GROUP BY sm.scope, md.day
        ), outside AS (
            SELECT sm.scope, u.day,
                   sum(CASE WHEN sm.side = 'facility'
                       THEN i.kwh * (least(i.e, u.e) - greatest(i.s, u.s)) / (i.e - i.s)
                       ELSE 0 END) AS facility,
                   sum(CASE WHEN sm.side = 'it'
                       THEN i.kwh * (least(i.e, u.e) - greatest(i.s, u.s)) / (i.e - i.s)
                       ELSE 0 END) AS it
            FROM iv i JOIN scope_meters sm ON sm.mid = i.mid
            JOIN uncommon_days u ON u.scope = sm.scope AND i.s < u.e AND i.e > u.s
            GROUP BY sm.scope, u.day
        ), gaps AS (
            SELECT scope, day, sum(e - s) AS ns FROM uncommon_days GROUP BY scope, day
        ), daily AS (
            SELECT s.scope, d.day, d.label, d.month, d.ds, d.de,
                   d.de - d.ds - coalesce(g.ns, 0) AS covered,
                   coalesce(t.facility, 0) - coalesce(o.facility, 0) AS facility,
                   coalesce(t.it, 0) - coalesce(o.it, 0) AS it
            FROM scopes s CROSS JOIN days d
            LEFT JOIN total t ON t.scope = s.scope AND t.day = d.day
            LEFT JOIN outside o ON o.scope = s.scope AND o.day = d.day
            LEFT JOIN gaps g ON g.scope = s.scope AND g.day = d.day
        ), monthly AS (
            SELECT scope, month AS label, min(ds) AS ds, max(de) AS de,
                   sum(covered) AS covered, sum(facility) AS facility, sum(it) AS it
            FROM daily GROUP BY scope, month
        ), periods AS (
            SELECT scope, 'day' AS kind, label, ds, de, covered, facility, it FROM daily
            UNION ALL
            SELECT scope, 'month' AS kind, label, ds, de, covered, facility, it FROM monthly
        )
        SELECT scope, kind, label, ds, de,
               CASE WHEN covered > 0 AND it > 0 THEN facility / it END AS pue,
               covered / (de - ds) AS coverage, facility, it
        FROM periods ORDER BY scope, kind, ds
        """
    ).fetchall()
    con.close()
    return result, rows_read


def main():
    if sys.argv[1:] == ["--version"]:
        print(duckdb.__version__)
        return
    if sys.argv[1:] != ["--serve"]:
        # By hand: one spec, the result rows and the time.
        spec = json.load(open(sys.argv[1]))
        start = time.perf_counter()
        result, rows_read = run(spec)
        secs = time.perf_counter() - start
        for r in result:
            print(*r, sep="\t")
        print(f"{secs:.3f} s, {rows_read} rows read, duckdb {duckdb.__version__}")
        return
    print(f"ready {duckdb.__version__}", flush=True)
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        spec = json.load(open(path))
        start = time.perf_counter()
        result, rows_read = run(spec)
        secs = time.perf_counter() - start
        out = []
        for scope, kind, label, ds, de, pue, coverage, facility, it in result:
            pue = "none" if pue is None else repr(pue)
            out.append(
                f"row\t{scope}\t{kind}\t{label}\t{ds}\t{de}\t{pue}\t{coverage!r}\t{facility!r}\t{it!r}"
            )
        out.append(f"done\t{secs!r}\t{rows_read}")
        print("\n".join(out), flush=True)


if __name__ == "__main__":
    main()
