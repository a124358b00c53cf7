{
  microvm.mem = 1111;
}
