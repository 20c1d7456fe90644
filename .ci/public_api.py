#!/usr/bin/env python3
"""Lists the public API of a crate from rustdoc's JSON output, one item per line, sorted:

    python3 .ci/public_api.py target/doc/portcullis.json

Lines look like `fn portcullis::client::Agent::post(&self, url)`, `struct portcullis::Server`,
`impl Clone for portcullis::Server`, `variant portcullis::tls::TlsVersion::Tls13`. Parameters are
listed by name (types are left out: rustdoc's type encoding changes between nightlies, names do
not), so a rename, an addition or a removal shows as a changed line. Used by .ci/public-api.
"""

import json
import sys


def main():
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    index = doc["index"]
    lines = set()
    seen = set()

    def kind_of(item):
        inner = item.get("inner") or {}
        if isinstance(inner, dict) and inner:
            return next(iter(inner.items()))
        return item.get("kind"), inner

    def params(data):
        sig = data.get("sig") or data.get("decl") or {}
        names = []
        for entry in sig.get("inputs", []):
            name = entry[0] if isinstance(entry, list) else str(entry)
            names.append("self" if name == "self" else name)
        if names and names[0] == "self":
            names[0] = "self"
        return "(" + ", ".join(names) + ")"

    def trait_name(impl):
        trait = impl.get("trait")
        if not trait:
            return None
        return trait.get("path") or trait.get("name") or "?"

    def walk(item_id, path):
        key = (item_id, tuple(path))
        if key in seen:
            return
        seen.add(key)
        item = index.get(str(item_id)) or index.get(item_id)
        if item is None:
            return
        kind, data = kind_of(item)
        name = item.get("name")
        if kind in ("use", "import"):
            target = data.get("id")
            alias = data.get("name")
            if target is None:
                lines.add(f"use {'::'.join(path)}::{data.get('source')}")
                return
            if data.get("is_glob") or data.get("glob"):
                target_item = index.get(str(target))
                if target_item:
                    _, tdata = kind_of(target_item)
                    for child in tdata.get("items", []):
                        child_item = index.get(str(child))
                        if child_item and child_item.get("visibility") == "public":
                            walk(child, path)
                return
            if str(target) not in index:
                # An item of another crate, re-exported.
                lines.add(f"use {'::'.join(path)}::{alias} = {data.get('source')}")
                return
            walk_named(target, path, alias)
            return
        if item.get("visibility") != "public":
            return
        walk_named(item_id, path, name)

    def walk_named(item_id, path, name):
        item = index.get(str(item_id))
        if item is None:
            return
        kind, data = kind_of(item)
        full = path + [name] if name else path
        p = "::".join(full)
        if item.get("deprecation"):
            lines.add(f"deprecated {p}")
        if kind == "module":
            lines.add(f"mod {p}")
            for child in data.get("items", []):
                walk(child, full)
        elif kind in ("struct", "enum", "union", "trait", "type_alias", "typedef", "constant",
                      "static", "function", "macro"):
            label = {"type_alias": "type", "typedef": "type", "constant": "const",
                     "function": "fn"}.get(kind, kind)
            lines.add(f"{label} {p}" + (params(data) if kind == "function" else ""))
            if kind == "enum":
                for v in data.get("variants", []):
                    vitem = index.get(str(v))
                    if vitem:
                        lines.add(f"variant {p}::{vitem.get('name')}")
            if kind == "struct":
                skind = data.get("kind") or {}
                fields = []
                if isinstance(skind, dict):
                    plain = skind.get("plain") or {}
                    fields = plain.get("fields", [])
                for fid in fields:
                    fitem = index.get(str(fid))
                    if fitem and fitem.get("visibility") == "public":
                        lines.add(f"field {p}::{fitem.get('name')}")
            if kind == "trait":
                for m in data.get("items", []):
                    mitem = index.get(str(m))
                    if mitem:
                        mk, md = kind_of(mitem)
                        lines.add(f"trait-item {p}::{mitem.get('name')}"
                                  + (params(md) if mk == "function" else ""))
            for impl_id in data.get("impls", []):
                impl_item = index.get(str(impl_id))
                if not impl_item:
                    continue
                ik, idata = kind_of(impl_item)
                if ik != "impl" or idata.get("synthetic") or idata.get("blanket_impl"):
                    continue
                trait = trait_name(idata)
                if trait:
                    lines.add(f"impl {trait} for {p}")
                    continue
                for m in idata.get("items", []):
                    mitem = index.get(str(m))
                    if not mitem or mitem.get("visibility") != "public":
                        continue
                    mk, md = kind_of(mitem)
                    if mitem.get("deprecation"):
                        lines.add(f"deprecated {p}::{mitem.get('name')}")
                    if mk == "function":
                        lines.add(f"fn {p}::{mitem.get('name')}{params(md)}")
                    elif mk in ("assoc_const", "constant"):
                        lines.add(f"const {p}::{mitem.get('name')}")

    root = doc["root"]
    walk_named(root, [], index[str(root)]["name"])
    for line in sorted(lines):
        print(line)


if __name__ == "__main__":
    main()
