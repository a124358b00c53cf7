# List helpers.
lib:
let
  inherit (builtins)
    length
    elemAt
    genList
    filter
    foldl'
    concatLists
    ;
in
{
  inherit (builtins)
    head
    tail
    length
    elem
    elemAt
    filter
    genList
    concatLists
    concatMap
    sort
    any
    all
    partition
    foldl'
    groupBy
    ;

  singleton = x: [ x ];
  toList = x: if builtins.isList x then x else [ x ];
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];

  foldr =
    op: nul: list:
    let
      n = length list;
      go = i: if i == n then nul else op (elemAt list i) (go (i + 1));
    in
    go 0;
  foldl =
    op: nul: list:
    foldl' op nul list;

  imap0 = f: list: genList (i: f i (elemAt list i)) (length list);
  imap1 = f: list: genList (i: f (i + 1) (elemAt list i)) (length list);
  forEach = xs: f: map f xs;

  flatten = x: if builtins.isList x then builtins.concatMap lib.flatten x else [ x ];
  last = list: elemAt list (length list - 1);
  init = list: lib.take (length list - 1) list;
  take = n: lib.sublist 0 n;
  drop = n: list: lib.sublist n (length list) list;
  sublist =
    start: count: list:
    let
      len = length list;
      from = if start > len then len else start;
      n = if from + count > len then len - from else count;
    in
    genList (i: elemAt list (from + i)) n;
  range = first: last: if first > last then [ ] else genList (i: first + i) (last - first + 1);
  replicate = n: x: genList (_: x) n;
  reverseList =
    xs:
    let
      n = length xs;
    in
    genList (i: elemAt xs (n - i - 1)) n;
  count = pred: foldl' (c: x: if pred x then c + 1 else c) 0;
  remove = x: filter (y: y != x);
  findFirst =
    pred: default: list:
    let
      found = filter pred list;
    in
    if found == [ ] then default else builtins.head found;
  findSingle =
    pred: default: multiple: list:
    let
      found = filter pred list;
      n = length found;
    in
    if n == 0 then
      default
    else if n == 1 then
      builtins.head found
    else
      multiple;
  unique = foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];
  allUnique = list: length (lib.unique list) == length list;
  subtractLists = remove: filter (x: !(builtins.elem x remove));
  intersectLists = a: filter (x: builtins.elem x a);
  mutuallyExclusive = a: b: lib.intersectLists a b == [ ];
  zipListsWith =
    f: a: b:
    genList (i: f (elemAt a i) (elemAt b i)) (lib.min (length a) (length b));
  zipLists = lib.zipListsWith (fst: snd: { inherit fst snd; });
  intersperse =
    sep: list:
    if list == [ ] then [ ] else builtins.tail (builtins.concatMap (x: [ sep x ]) list);
  ifilter0 =
    pred: list:
    map (x: x.v) (filter (x: pred x.i x.v) (lib.imap0 (i: v: { inherit i v; }) list));
  groupBy' =
    op: nul: pred: list:
    builtins.mapAttrs (_: foldl' op nul) (builtins.groupBy pred list);
}
