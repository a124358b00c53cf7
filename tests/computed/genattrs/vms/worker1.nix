{
  microvm = {
    mem = 1024;
    socket = "worker1.socket";
  };
}
