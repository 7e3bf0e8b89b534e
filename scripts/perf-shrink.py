#!/usr/bin/env python3
"""Folded stacks (inferno-collapse-perf) made small enough to commit: generic arguments nested inside other
generic arguments dropped from each frame (`Foo<Bar<X>, Baz>::run` becomes `Foo<Bar, Baz…>::run`), names cut at
200 characters, equal stacks merged.
    scripts/perf-shrink.py IN.folded OUT.folded"""
import collections
import sys


def clean(frame):
    out, depth = [], 0
    for ch in frame:
        if ch == '<':
            depth += 1
            if depth == 1:
                out.append('<')
        elif ch == '>':
            if depth == 1:
                out.append('…>')
            depth = max(0, depth - 1)
        elif depth <= 1:
            out.append(ch)
    return ''.join(out)[:200]


stacks = collections.Counter()
with open(sys.argv[1]) as folded:
    for line in folded:
        stack, samples = line.rsplit(' ', 1)
        stacks[';'.join(clean(frame) for frame in stack.split(';'))] += int(samples)
with open(sys.argv[2], 'w') as out:
    for stack, samples in sorted(stacks.items()):
        out.write(f"{stack} {samples}\n")
