let {
  hostName = "legacy";
  body = {
    networking.hostName = hostName;
    microvm.mem = 512;
  };
}
