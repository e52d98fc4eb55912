{
  "target_defaults": {
    "defines": ["_GNU_SOURCE"],
    "cflags_c": ["-std=gnu11", "-Wall", "-Wextra"]
  },
  "targets": [
    {
      "target_name": "baton",
      "sources": ["shared/native/src/baton.c"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "baton-exec",
      "type": "executable",
      "sources": ["shared/native/src/baton-exec.c"]
    }
  ]
}
