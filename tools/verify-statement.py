#!/usr/bin/env python3
"""Verify an Rpt Portal ledger statement without any code of Rpt Portal.

    python3 tools/verify-statement.py statement.json [records-1.txt records-2.txt ...]

statement.json comes from GET /v1/ledger/statement?period=YYYY-MM-DD (or the Allocations page); each records file from
GET /v1/ledger/statement/records?entry=SEQ (or the same page). Following docs/LEDGER-FORMAT.md, this recomputes:

  * the hash chain: every entry's hash from its fields and the hash before it, from the opening point to the closing one;
  * the balance: allocated, consumed and expired from the period's entries, and remaining from them;
  * for each records file, the consumption entry it belongs to: its digest (SHA-256 of the file), its count and its amount.

Python 3 standard library only. Exit status 0 when everything agrees, 1 when something does not, 2 on bad usage.
"""

import hashlib
import json
import sys

FORMAT = "rpt-statement/1"
GENESIS = "0" * 64
RECORD_COLUMNS = 23  # docs/LEDGER-FORMAT.md, "An audit record"
TRAILING_COLUMNS = 2  # version 2: project and api_key_id, after the marker "+;", only when either is set


def utf16_length(text):
    return len(text.encode("utf-16-le")) // 2


def ledger_field(value):
    """One field of a ledger entry's canonical form: {length}:{value}; with the length in UTF-16 code units, or -; for null."""
    if value is None:
        return "-;"
    text = str(value)
    return "%d:%s;" % (utf16_length(text), text)


def entry_hash(tenant_id, entry):
    fields = [tenant_id, entry["seq"], entry["kind"], entry["source"], entry["amount_micro_credits"], entry["period_start"],
              entry["idempotency_key"], entry["description"], entry["covers_from_seq"], entry["covers_to_seq"],
              entry["event_count"], entry["events_digest"], entry["created_at_ms"]]
    if entry.get("expires_at_ms") is not None or entry.get("grant_seq") is not None:
        fields += [entry.get("expires_at_ms"), entry.get("grant_seq")]
    canonical = "".join(ledger_field(f) for f in fields)
    return hashlib.sha256((entry["prev_hash"] + canonical).encode("utf-8")).hexdigest()


def parse_records(text):
    """Splits back-to-back audit records into lists of values (None for null): 23, or 25 when the version-2 marker "+;"
    follows the 23rd (project and api_key_id); lengths count Unicode characters."""
    records, i, n = [], 0, len(text)
    while i < n:
        record = []
        columns = RECORD_COLUMNS
        while len(record) < columns:
            if text.startswith("-;", i):
                record.append(None)
                i += 2
            else:
                colon = text.find(":", i)
                if colon < 0 or colon - i > 20 or not text[i:colon].isdigit():
                    raise ValueError("record %d is not in canonical form at character %d" % (len(records) + 1, i))
                length = int(text[i:colon])
                end = colon + 1 + length
                if end >= n + 1 or text[end:end + 1] != ";":
                    raise ValueError("record %d: a value of length %d does not end with ';' at character %d" % (len(records) + 1, length, end))
                record.append(text[colon + 1:end])
                i = end + 1
            if len(record) == RECORD_COLUMNS and columns == RECORD_COLUMNS and text.startswith("+;", i):
                columns += TRAILING_COLUMNS
                i += 2
        records.append(record)
    return records


class Checker:
    def __init__(self):
        self.problems = []

    def check(self, ok, what):
        print(("  ok    " if ok else "  FAIL  ") + what)
        if not ok:
            self.problems.append(what)
        return ok


def verify_chain(c, statement):
    tenant = statement["tenant_id"]
    opening, closing, head = statement["opening"], statement["closing"], statement["chain_head"]
    entries = statement["entries"]
    print("Chain of %s, entries %d to %d:" % (tenant, opening["seq"] + 1, closing["seq"]))
    c.check(opening["seq"] > 0 or opening["hash"] == GENESIS, "the chain begins at seq 0 with 64 zeros" if opening["seq"] == 0
            else "opening point: seq %d, hash %s (check it against the previous statement's closing point)" % (opening["seq"], opening["hash"]))
    prev, seq, broken = opening["hash"], opening["seq"], 0
    for e in entries:
        seq += 1
        if e["seq"] != seq:
            broken += 1
            c.check(False, "entry %d: seq %d where %d was expected (an entry is missing, repeated or moved)" % (seq, e["seq"], seq))
            seq = e["seq"]
        if e["prev_hash"] != prev:
            broken += 1
            c.check(False, "seq %d: prev_hash %s is not the hash %s of the entry before it" % (e["seq"], e["prev_hash"][:12], prev[:12]))
        recomputed = entry_hash(tenant, e)
        if recomputed != e["hash"]:
            broken += 1
            c.check(False, "seq %d: hash %s does not match its fields (recomputed %s)" % (e["seq"], e["hash"][:12], recomputed[:12]))
        prev = e["hash"]
    if broken == 0:
        c.check(True, "%d entries: every seq in order, every prev_hash the hash before it, every hash recomputed from its fields" % len(entries))
    c.check(closing["seq"] == seq and closing["hash"] == prev, "closing point: seq %d, hash %s" % (closing["seq"], closing["hash"]))
    if head["seq"] == closing["seq"]:
        c.check(head["hash"] == closing["hash"], "the chain head is the closing point")
    else:
        c.check(head["seq"] > closing["seq"], "the chain head (seq %d, hash %s) is later than the closing point" % (head["seq"], head["hash"]))


def verify_balance(c, statement):
    period = statement["period"]["start"]
    balance = statement["balance"]
    sums = {"allocation": 0, "consumption": 0, "expiry": 0, "void": 0}
    for e in statement["entries"]:
        if e["period_start"] == period:
            sums[e["kind"]] += e["amount_micro_credits"]
    print("Balance of the period %s to %s (micro-credits; 1 credit = 1,000,000):" % (period, statement["period"]["end"]))
    carried, unflushed = balance["carried_in_micro_credits"], balance["unflushed_micro_credits"]
    print("  from the statement: carried in from earlier periods %d, accepted but not yet in the ledger %d" % (carried, unflushed))
    voided = balance.get("voided_micro_credits", 0)
    c.check(voided == sums["void"], "voided %d = the period's void entries %d" % (voided, sums["void"]))
    c.check(balance["allocated_micro_credits"] == carried + sums["allocation"] - sums["void"],
            "allocated %d = carried in %d + the period's allocations %d − its voids %d"
            % (balance["allocated_micro_credits"], carried, sums["allocation"], sums["void"]))
    c.check(balance["consumed_micro_credits"] == sums["consumption"],
            "consumed %d = the period's consumption entries %d" % (balance["consumed_micro_credits"], sums["consumption"]))
    c.check(balance["expired_micro_credits"] == sums["expiry"],
            "expired %d = the period's expiry entries %d" % (balance["expired_micro_credits"], sums["expiry"]))
    remaining = balance["allocated_micro_credits"] - balance["consumed_micro_credits"] - unflushed
    c.check(balance["remaining_micro_credits"] == remaining,
            "remaining %d = allocated − consumed − not yet in the ledger = %d" % (balance["remaining_micro_credits"], remaining))
    c.check(not statement["final"] or unflushed == 0, "final: " + ("yes, nothing of the period is outside the ledger" if statement["final"] else "no, the period is open or not all flushed"))


def verify_records(c, statement, path):
    with open(path, "rb") as f:
        data = f.read()
    digest = hashlib.sha256(data).hexdigest()
    print("Records %s (%d bytes, SHA-256 %s):" % (path, len(data), digest))
    try:
        records = parse_records(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        c.check(False, "the file is canonical audit records in UTF-8: %s" % error)
        return
    entries = [e for e in statement["entries"] if e["kind"] == "consumption"]
    entry = None
    if records:
        first = int(records[0][0])
        entry = next((e for e in entries if e["covers_from_seq"] < first <= e["covers_to_seq"] and records[0][5] == e["period_start"]), None)
    else:
        entry = next((e for e in entries if e["events_digest"] == digest), None)
    if not c.check(entry is not None, "a consumption entry of the statement covers these records"):
        return
    print("  entry seq %d covers audit records (%d, %d] of period %s" % (entry["seq"], entry["covers_from_seq"], entry["covers_to_seq"], entry["period_start"]))
    c.check(digest == entry["events_digest"], "the file's SHA-256 is the entry's events_digest")
    previous, inside = entry["covers_from_seq"], True
    for r in records:
        seq = int(r[0])
        if not (previous < seq <= entry["covers_to_seq"]) or r[1] != statement["tenant_id"] or r[5] != entry["period_start"]:
            inside = False
        previous = seq
    c.check(inside, "every record is the tenant's, of the entry's period, inside its range, in ascending seq")
    c.check(len(records) == entry["event_count"], "%d records = the entry's event_count %d" % (len(records), entry["event_count"]))
    amount = sum(int(r[22]) for r in records if r[18] == "1")
    c.check(amount == entry["amount_micro_credits"],
            "billable micro_credits sum to %d = the entry's amount %d" % (amount, entry["amount_micro_credits"]))


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 2
    try:
        with open(argv[1], "rb") as f:
            statement = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as error:
        print("cannot read the statement %s: %s" % (argv[1], error))
        return 2
    c = Checker()
    if not c.check(statement.get("format") == FORMAT, "format %s" % FORMAT):
        return 1
    print("Statement of %s for %s to %s, generated %s" % (statement["tenant_id"], statement["period"]["start"], statement["period"]["end"], statement["generated_at"]))
    verify_chain(c, statement)
    verify_balance(c, statement)
    for path in argv[2:]:
        verify_records(c, statement, path)
    if c.problems:
        print("NOT VERIFIED: %d check(s) failed" % len(c.problems))
        return 1
    print("VERIFIED: the chain, the balance%s agree with the statement" % (" and the records" if len(argv) > 2 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
