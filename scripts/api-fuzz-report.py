#!/usr/bin/env python3
"""What each operation of the OpenAPI document answered across schemathesis
runs, from their NDJSON reports; the failures per check.

Usage: api-fuzz-report.py OPENAPI.json RUN.ndjson...

Exits 1 when an operation only ever answered 404 (or was never called):
the fuzzer then never reached its logic, only the lookup of an id it made
up. 401 is left out of that count: schemathesis sends every operation once
without the token on purpose.
"""

import json
import sys
from collections import Counter, defaultdict


def main(doc_path, reports):
    doc = json.load(open(doc_path))
    operations = sorted(f"{m.upper()} {p}" for p, ms in doc["paths"].items() for m in ms)
    answers = defaultdict(Counter)
    failures = Counter()
    examples = {}
    # Stateful calls whose ids came from an earlier answer through a link.
    linked = Counter()
    for report in reports:
        for line in open(report):
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if not finished:
                continue
            recorder = finished["recorder"]
            for case_id, case in recorder.get("cases", {}).items():
                value = case["value"]
                if case.get("is_transition_applied"):
                    linked[f'{value["method"]} {value["path"]}'] += 1
                interaction = recorder.get("interactions", {}).get(case_id)
                if interaction and interaction.get("response"):
                    status = interaction["response"]["status_code"]
                    answers[f'{value["method"]} {value["path"]}'][status] += 1
            for checks in recorder.get("checks", {}).values():
                for check in checks:
                    if check["status"] == "failure":
                        failure = check["failure_info"]["failure"]
                        failures[check["name"]] += 1
                        key = (check["name"], failure["operation"], failure["title"])
                        examples.setdefault(key, failure["message"].replace("\n", " | ")[:200])

    width = max(len(op) for op in operations)
    for op in operations:
        seen = ", ".join(f"{s}×{n}" for s, n in sorted(answers[op].items())) or "never called"
        print(f"  {op:<{width}}  {seen}")
    print(f"stateful calls that followed a link: {sum(linked.values())}, to {len(linked)} operations")
    for op, n in sorted(linked.items()):
        print(f"  {op}  {n}")
    print("failures per check:", dict(failures) or "none")
    for (check, op, title), message in sorted(examples.items()):
        print(f"  {check}: {op}: {title}: {message}")
    only_404 = [op for op in operations if set(answers[op]) - {401} <= {404}]
    print(f"operations that only answered 404: {len(only_404)} of {len(operations)}")
    for op in only_404:
        print(f"  {op}")
    return 1 if only_404 else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
