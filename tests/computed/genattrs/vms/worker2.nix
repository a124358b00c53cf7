{
  # worker2 keeps the shared default memory
  microvm.socket = "worker2.socket";
}
