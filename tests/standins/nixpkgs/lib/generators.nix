# Value printers (used for error messages) and simple serialisers.
lib:
let
  inherit (builtins)
    isAttrs
    isList
    isString
    isInt
    isBool
    isFloat
    isPath
    attrNames
    concatStringsSep
    ;

  quote =
    s:
    "\""
    + builtins.replaceStrings [ "\\" "\"" "\${" "\n" "\t" "\r" ] [ "\\\\" "\\\"" "\\\${" "\\n" "\\t" "\\r" ] s
    + "\"";

  showFunction =
    f:
    let
      args = lib.functionArgs f;
      shown = map (n: if args.${n} then "${n}?" else n) (attrNames args);
    in
    if args == { } then "<function>" else "<function, args: {${concatStringsSep ", " shown}}>";

  # Render a Nix value the way nixpkgs' error messages show definition values:
  # one line for scalars, indented multi-line blocks for lists and sets, and
  # `<derivation name>` for derivations. `depth` stops runaway recursion.
  pretty =
    indent: depth: v:
    let
      next = indent + "  ";
    in
    if isString v then
      quote v
    else if isInt v || isFloat v then
      toString v
    else if isBool v then
      lib.boolToString v
    else if v == null then
      "null"
    else if isPath v then
      toString v
    else if lib.isFunction v && !(isAttrs v) then
      showFunction v
    else if depth <= 0 then
      "<...>"
    else if isList v then
      if v == [ ] then
        "[ ]"
      else
        "[\n" + concatStringsSep "\n" (map (x: next + pretty next (depth - 1) x) v) + "\n" + indent + "]"
    else if isAttrs v then
      if (v.type or null) == "derivation" then
        "<derivation ${v.name or "?"}>"
      else if v ? __functor then
        showFunction v
      else if v == { } then
        "{ }"
      else
        "{\n"
        + concatStringsSep "\n" (
          map (n: "${next}${lib.escapeNixIdentifier n} = ${pretty next (depth - 1) v.${n}};") (attrNames v)
        )
        + "\n"
        + indent
        + "}"
    else
      "<${builtins.typeOf v}>";
in
{
  toPretty =
    {
      multiline ? true,
      indent ? "",
    }:
    v:
    let
      s = pretty indent 10 v;
    in
    if multiline then s else builtins.replaceStrings [ "\n" ] [ " " ] s;

  toJSON = { }: builtins.toJSON;

  toKeyValue =
    {
      mkKeyValue ? k: v: "${k}=${toString v}",
      listsAsDuplicateKeys ? false,
    }:
    set:
    lib.concatStrings (
      builtins.concatMap (
        k:
        let
          v = set.${k};
        in
        if listsAsDuplicateKeys && isList v then
          map (x: mkKeyValue k x + "\n") v
        else
          [ (mkKeyValue k v + "\n") ]
      ) (attrNames set)
    );
}
