{
  "target_defaults": {
    "defines": ["_GNU_SOURCE"],
    "cflags_c": ["-std=gnu11", "-Wall", "-Wextra"]
  },
  "targets": [
    {
      "target_name": "baton",
      "sources": [
        "shared/native/src/module.c",
        "shared/native/src/args.c",
        "shared/native/src/errno-names.c",
        "shared/native/src/sockets.c",
        "shared/native/src/fd-passing.c",
        "shared/native/src/notify.c",
        "shared/native/src/process.c",
        "shared/native/src/memory.c",
        "shared/native/src/bus-guard.c"
      ],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "baton-exec",
      "type": "executable",
      "sources": ["shared/native/src/baton-exec.c"]
    }
  ]
}
