# Attribute set helpers.
lib:
let
  inherit (builtins)
    attrNames
    listToAttrs
    isAttrs
    foldl'
    ;
in
{
  inherit (builtins)
    attrNames
    attrValues
    hasAttr
    getAttr
    mapAttrs
    listToAttrs
    removeAttrs
    intersectAttrs
    catAttrs
    ;

  nameValuePair = name: value: { inherit name value; };
  genAttrs = names: f: listToAttrs (map (n: lib.nameValuePair n (f n)) names);
  mapAttrs' = f: set: listToAttrs (map (n: f n set.${n}) (attrNames set));
  mapAttrsToList = f: set: map (n: f n set.${n}) (attrNames set);
  attrsToList = lib.mapAttrsToList lib.nameValuePair;
  concatMapAttrs = f: set: foldl' (acc: n: acc // f n set.${n}) { } (attrNames set);
  filterAttrs =
    pred: set:
    listToAttrs (
      builtins.concatMap (n: if pred n set.${n} then [ (lib.nameValuePair n set.${n}) ] else [ ]) (
        attrNames set
      )
    );
  filterAttrsRecursive =
    pred: set:
    lib.mapAttrs (_: v: if isAttrs v then lib.filterAttrsRecursive pred v else v) (
      lib.filterAttrs pred set
    );
  optionalAttrs = cond: set: if cond then set else { };
  foldAttrs =
    op: nul: list:
    foldl' (
      acc: set: acc // builtins.mapAttrs (n: v: op v (acc.${n} or nul)) set
    ) { } (lib.reverseList list);

  zipAttrsWith =
    f: sets:
    let
      names = lib.unique (builtins.concatMap attrNames sets);
    in
    listToAttrs (map (n: lib.nameValuePair n (f n (builtins.catAttrs n sets))) names);
  zipAttrs = lib.zipAttrsWith (_: vs: vs);

  attrByPath =
    path: default: set:
    if path == [ ] then
      set
    else if isAttrs set && set ? ${builtins.head path} then
      lib.attrByPath (builtins.tail path) default set.${builtins.head path}
    else
      default;
  hasAttrByPath =
    path: set:
    path == [ ]
    || (isAttrs set && set ? ${builtins.head path} && lib.hasAttrByPath (builtins.tail path) set.${builtins.head path});
  getAttrFromPath =
    path: set:
    lib.attrByPath path (throw "cannot find attribute `${lib.concatStringsSep "." path}'") set;
  setAttrByPath =
    path: value:
    if path == [ ] then value else { ${builtins.head path} = lib.setAttrByPath (builtins.tail path) value; };

  recursiveUpdateUntil =
    stop: lhs: rhs:
    let
      go =
        path: l: r:
        l
        // builtins.mapAttrs (
          n: rv:
          if l ? ${n} && isAttrs l.${n} && isAttrs rv && !(stop (path ++ [ n ]) l.${n} rv) then
            go (path ++ [ n ]) l.${n} rv
          else
            rv
        ) r;
    in
    go [ ] lhs rhs;
  recursiveUpdate = lib.recursiveUpdateUntil (_: l: r: lib.isDerivation l || lib.isDerivation r);

  mapAttrsRecursiveCond =
    cond: f: set:
    let
      go =
        path: s:
        builtins.mapAttrs (
          n: v: if isAttrs v && cond v then go (path ++ [ n ]) v else f (path ++ [ n ]) v
        ) s;
    in
    go [ ] set;
  mapAttrsRecursive = lib.mapAttrsRecursiveCond (_: true);
  collect =
    pred: v:
    if pred v then
      [ v ]
    else if isAttrs v then
      builtins.concatMap (lib.collect pred) (builtins.attrValues v)
    else
      [ ];
  matchAttrs =
    pattern: set:
    builtins.all (
      n:
      set ? ${n}
      && (if isAttrs pattern.${n} then lib.matchAttrs pattern.${n} set.${n} else pattern.${n} == set.${n})
    ) (attrNames pattern);

  isDerivation = x: isAttrs x && (x.type or null) == "derivation";
  toDerivation =
    path:
    let
      self = {
        type = "derivation";
        name = let b = baseNameOf (toString path); in builtins.unsafeDiscardStringContext (builtins.substring 33 (builtins.stringLength b) b);
        outPath = path;
        outputs = [ "out" ];
        out = self;
        outputName = "out";
      };
    in
    self;
  getOutput = output: pkg: if pkg ? outputs && builtins.elem output pkg.outputs then pkg.${output} else pkg.out or pkg;
  getBin = lib.getOutput "bin";
  getLib = lib.getOutput "lib";
  getDev = lib.getOutput "dev";
  getExe' = pkg: name: "${lib.getBin pkg}/bin/${name}";
  getExe =
    pkg:
    lib.getExe' pkg (
      pkg.meta.mainProgram or (throw "getExe: package ${pkg.name or "?"} has no meta.mainProgram")
    );

  recurseIntoAttrs = set: set // { recurseForDerivations = true; };
  dontRecurseIntoAttrs = set: set // { recurseForDerivations = false; };
}
