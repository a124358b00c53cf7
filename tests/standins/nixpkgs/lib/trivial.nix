# Small general helpers.
lib: {
  id = x: x;
  const = x: _: x;
  flip =
    f: a: b:
    f b a;
  pipe = builtins.foldl' (x: f: f x);
  fix =
    f:
    let
      x = f x;
    in
    x;

  inherit (builtins)
    isString
    isInt
    isBool
    isFloat
    isList
    isAttrs
    isPath
    typeOf
    seq
    deepSeq
    tryEval
    trace
    toJSON
    fromJSON
    ;

  isFunction = f: builtins.isFunction f || (builtins.isAttrs f && f ? __functor);

  # Like builtins.functionArgs, but also for functors (attribute sets with __functor).
  functionArgs =
    f:
    if builtins.isAttrs f then
      f.__functionArgs or (lib.functionArgs (f.__functor f))
    else
      builtins.functionArgs f;

  setFunctionArgs = f: args: {
    __functor = _: f;
    __functionArgs = args;
  };

  boolToString = b: if b then "true" else "false";
  min = a: b: if a < b then a else b;
  max = a: b: if a > b then a else b;
  mod = a: b: a - (a / b) * b;

  warn = msg: builtins.trace "warning: ${msg}";
  warnIf = cond: msg: if cond then lib.warn msg else x: x;
  throwIf = cond: msg: if cond then throw msg else x: x;
  throwIfNot = cond: msg: if cond then x: x else throw msg;

  versionAtLeast = a: b: builtins.compareVersions a b >= 0;
  versionOlder = a: b: builtins.compareVersions a b < 0;

  importJSON = path: builtins.fromJSON (builtins.readFile path);

  release = "25.11";
  oldestSupportedRelease = 2505;
  inNixShell = false;
}
