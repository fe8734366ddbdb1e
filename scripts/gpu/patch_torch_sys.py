"""Stubs out the tch bindings of operators that an older libtorch lacks.

Usage: patch_torch_sys.py TORCH_SYS_DIR LINE [LINE ...]
LINEs are the line numbers of libtch/torch_api_generated.cpp that failed to compile; each
enclosing `atg_*` function gets a body that throws. darkmagic calls none of these operators.
"""
import re, sys
p = sys.argv[1] + '/libtch/torch_api_generated.cpp'
lines = open(p).read().split('\n')
bad = set(int(x) for x in sys.argv[2:])
# find function starts
starts = [i for i, l in enumerate(lines) if re.match(r'^\w[\w\s\*]* atg_\w+\(', l)]
kill = set()
for b in bad:
    idx = b - 1
    s = max(x for x in starts if x <= idx)
    kill.add(s)
out = []
i = 0
while i < len(lines):
    if i in kill:
        out.append(lines[i])
        j = i + 1
        # expect '  PROTECT(' then body until line == '  )'
        assert lines[j].strip() == 'PROTECT(', lines[j]
        out.append(lines[j]); j += 1
        while lines[j] != '  )':
            j += 1
        out.append('    throw std::runtime_error("op not available in this libtorch");')
        out.append(lines[j])
        i = j + 1
        continue
    out.append(lines[i]); i += 1
open(p, 'w').write('\n'.join(out))
print('patched', len(kill))
