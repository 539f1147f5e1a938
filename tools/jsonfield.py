#!/usr/bin/python3
"""Prints a field of the last JSON object in a tool's output.

    /usr/bin/python3 tools/jsonfield.py FILE|- [PATH]

The text may hold other lines and pretty-printed (multi-line) JSON, as
`occ ... --json` prints it. PATH is dot-separated keys and list indices,
e.g. `median_ms` or `top.0.index`; without PATH the whole object is printed
on one line. Exit 1 if there is no JSON object or the path does not exist.
"""
import json
import sys


def last_object(text):
    """The last top-level JSON object in text, or None."""
    dec = json.JSONDecoder()
    found = None
    i = 0
    while True:
        i = text.find("{", i)
        if i < 0:
            return found
        try:
            obj, end = dec.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        if isinstance(obj, dict):
            found = obj
        i = end


def get(obj, path):
    for key in path.split(".") if path else []:
        if isinstance(obj, list):
            obj = obj[int(key)]
        else:
            obj = obj[key]
    return obj


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    text = sys.stdin.read() if sys.argv[1] == "-" else open(sys.argv[1]).read()
    obj = last_object(text)
    if obj is None:
        sys.exit("jsonfield: no JSON object in %s" % sys.argv[1])
    try:
        v = get(obj, sys.argv[2] if len(sys.argv) == 3 else "")
    except (KeyError, IndexError, ValueError):
        sys.exit("jsonfield: no %s in %s" % (sys.argv[2], json.dumps(obj)[:200]))
    print(v if isinstance(v, (str, int, float)) and not isinstance(v, bool) else json.dumps(v))


if __name__ == "__main__":
    main()
