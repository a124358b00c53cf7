# String helpers.
lib:
let
  inherit (builtins)
    concatStringsSep
    stringLength
    substring
    replaceStrings
    isString
    ;
in
{
  inherit (builtins)
    concatStringsSep
    stringLength
    substring
    replaceStrings
    match
    split
    toString
    baseNameOf
    dirOf
    hashString
    unsafeDiscardStringContext
    ;

  concatStrings = concatStringsSep "";
  concatMapStrings = f: list: concatStringsSep "" (map f list);
  concatMapStringsSep =
    sep: f: list:
    concatStringsSep sep (map f list);
  concatImapStringsSep =
    sep: f: list:
    concatStringsSep sep (lib.imap1 f list);
  concatLines = list: lib.concatMapStrings (s: s + "\n") list;
  optionalString = cond: s: if cond then s else "";

  hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;
  hasSuffix =
    suf: s:
    let
      n = stringLength s;
      m = stringLength suf;
    in
    n >= m && substring (n - m) m s == suf;
  hasInfix = infix: s: builtins.match ".*${lib.escapeRegex infix}.*" s != null;
  removePrefix =
    pre: s: if lib.hasPrefix pre s then substring (stringLength pre) (stringLength s) s else s;
  removeSuffix =
    suf: s:
    if lib.hasSuffix suf s then substring 0 (stringLength s - stringLength suf) s else s;

  splitString = sep: s: builtins.filter isString (builtins.split (lib.escapeRegex sep) s);
  stringToCharacters = s: builtins.genList (i: substring i 1 s) (stringLength s);
  escapeRegex = replaceStrings (lib.stringToCharacters "\\[{()^$?*+|.") (
    map (c: "\\${c}") (lib.stringToCharacters "\\[{()^$?*+|.")
  );
  escape = chars: replaceStrings chars (map (c: "\\${c}") chars);

  toUpper = replaceStrings (lib.stringToCharacters "abcdefghijklmnopqrstuvwxyz") (
    lib.stringToCharacters "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  );
  toLower = replaceStrings (lib.stringToCharacters "ABCDEFGHIJKLMNOPQRSTUVWXYZ") (
    lib.stringToCharacters "abcdefghijklmnopqrstuvwxyz"
  );
  trim =
    s:
    let
      m = builtins.match "[[:space:]]*(.*[^[:space:]])[[:space:]]*" s;
    in
    if m == null then "" else builtins.head m;
  toInt =
    s:
    let
      m = builtins.match "[[:space:]]*(-?[0-9]+)[[:space:]]*" s;
    in
    if m == null then throw "toInt: could not convert `${s}' to an integer" else builtins.fromJSON (builtins.head m);

  escapeShellArg = arg: "'${replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";
  escapeShellArgs = args: concatStringsSep " " (map lib.escapeShellArg args);
  escapeNixString = s: builtins.toJSON s;
  isValidNixIdentifier = s: builtins.match "[a-zA-Z_][a-zA-Z0-9_'-]*" s != null;
  escapeNixIdentifier = s: if lib.isValidNixIdentifier s then s else lib.escapeNixString s;

  makeSearchPath =
    sub: paths: concatStringsSep ":" (map (p: "${toString p}/${sub}") (builtins.filter (p: p != null) paths));
  makeBinPath = lib.makeSearchPath "bin";

  isStringLike = x: isString x || builtins.isPath x || (builtins.isAttrs x && (x ? outPath || x ? __toString));
  isStorePath =
    x:
    lib.isStringLike x
    && (
      let
        s = toString x;
        rest = lib.removePrefix "${builtins.storeDir}/" s;
      in
      lib.hasPrefix "${builtins.storeDir}/" s && builtins.match "[0-9a-z]{32}-[^/]+" rest != null
    );
  fileContents = path: lib.removeSuffix "\n" (builtins.readFile path);
}
