import sys

from . import names, path

if len(sys.argv) < 2:
    print("\n".join(names()))
elif len(sys.argv) == 2:
    print(path(sys.argv[1]).read_text(encoding="utf8"), end="")
else:
    with open(sys.argv[2], "w", encoding="utf8") as out:
        out.write(path(sys.argv[1]).read_text(encoding="utf8"))
