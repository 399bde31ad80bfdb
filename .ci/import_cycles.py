#!/usr/bin/env python3
"""Print import circles between modules of src/ (test code excluded).

Usage: .ci/import_cycles.py [src] [--files] [--edges]
Nodes: top-level modules (default) or every module file (--files).
Edges: any `crate::a::b` path or `use crate::{a, b::c}` group (and super::
paths with --files); `#[cfg(test)]` modules and comments are skipped.
Exit status 1 when there is a circle.
"""
import os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith('-') else 'src'
files_mode = '--files' in sys.argv

def strip_tests(text):
    # drop `#[cfg(test)] mod x { ... }` blocks and `#[cfg(test)] mod x;` lines
    out, i = [], 0
    pat = re.compile(r'#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*(;|\{)')
    while True:
        m = pat.search(text, i)
        if not m:
            out.append(text[i:]); break
        out.append(text[i:m.start()])
        if m.group(3) == ';':
            i = m.end(); continue
        depth, j = 1, m.end()
        while depth and j < len(text):
            if text[j] == '{': depth += 1
            elif text[j] == '}': depth -= 1
            j += 1
        i = j
    return ''.join(out)

def strip_comments(text):
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    return re.sub(r'//[^\n]*', '', text)

def modpath(path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ('mod', 'lib', 'main'): rel = rel[:-1]
    return rel

test_files = set()
mods = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(d, f)
            mods[tuple(modpath(p))] = p

# files declared only under #[cfg(test)] are test code
for mp, p in mods.items():
    t = strip_comments(open(p).read())
    for m in re.finditer(r'#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;', t):
        test_files.add(mp + (m.group(1),))

def is_test(mp):
    return any(mp[:k] in test_files for k in range(1, len(mp) + 1))

def paths_in(text):
    """yield crate-relative paths (lists of idents) referenced via crate::"""
    for m in re.finditer(r'\bcrate::', text):
        j = m.end()
        yield from expand(text, j, [])

def expand(text, j, prefix):
    # parse ident(::ident)* or {group}
    path = list(prefix)
    while True:
        if text[j] == '{':
            depth, k, start, items = 1, j + 1, j + 1, []
            while depth:
                c = text[k]
                if c == '{': depth += 1
                elif c == '}': depth -= 1
                elif c == ',' and depth == 1:
                    items.append((start, k)); start = k + 1
                k += 1
            items.append((start, k - 1))
            for s, e in items:
                sub = text[s:e].strip()
                if not sub: continue
                off = s + (len(text[s:e]) - len(text[s:e].lstrip()))
                yield from expand(text, off, path)
            return
        m = re.match(r'[A-Za-z_]\w*', text[j:])
        if not m:
            yield path; return
        path.append(m.group(0)); j += m.end()
        if text[j:j+2] == '::':
            j += 2; continue
        yield path; return

edges = {}
for mp, p in mods.items():
    if is_test(mp) or not mp: continue
    text = strip_comments(strip_tests(open(p).read()))
    refs = []
    for path in paths_in(text):
        refs.append(path)
    if files_mode:
        # super:: chains
        for m in re.finditer(r'\b((?:super::)+)', text):
            n = m.group(1).count('super')
            base = list(mp[:-n]) if n <= len(mp) else []
            # file mp's own module is mp; super refers to parent of mp
            for path in expand(text, m.end(), []):
                refs.append(base + path)
    for path in refs:
        if files_mode:
            # longest existing module prefix
            tgt = None
            for k in range(len(path), 0, -1):
                if tuple(path[:k]) in mods:
                    tgt = tuple(path[:k]); break
            if tgt is None or tgt == mp or is_test(tgt): continue
            # a module using its own ancestor's items (mod.rs re-exports) counts too
            a, b = '/'.join(mp), '/'.join(tgt)
        else:
            if not path or (path[0],) not in mods and not os.path.exists(os.path.join(root, path[0])): continue
            a, b = mp[0], path[0]
            if a == b: continue
        edges.setdefault(a, set()).add(b)

# strongly connected components (Tarjan)
index, low, stack, on, sccs, idx = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = idx[0]; idx[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for v in list(edges):
    if v not in index: strong(v)

def short_cycle(comp):
    # shortest cycle through each node pair edge, via BFS
    cs = set(comp); seen = set(); out = []
    for s in comp:
        for t in sorted(edges.get(s, ())):
            if t not in cs: continue
            # BFS t -> s
            prev = {t: None}; q = [t]
            while q and s not in prev:
                nq = []
                for u in q:
                    for w in sorted(edges.get(u, ())):
                        if w in cs and w not in prev:
                            prev[w] = u; nq.append(w)
                q = nq
            if s in prev:
                path = []; u = s
                while u is not None: path.append(u); u = prev[u]
                cyc = [s] + list(reversed(path))
                key = frozenset(cyc)
                if key not in seen:
                    seen.add(key); out.append(' -> '.join(cyc))
    return out

if '--edges' in sys.argv:
    for a in sorted(edges): print(a, '->', ', '.join(sorted(edges[a])))
if not sccs:
    print('no import circle'); sys.exit(0)
for comp in sccs:
    print('circle among:', ', '.join(comp))
    for c in short_cycle(comp):
        print('   ', c)
sys.exit(1)
