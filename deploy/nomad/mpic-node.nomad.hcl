# mpic-node as a Nomad system job: one perspective per eligible client, host networking so
# checks leave from the host's published egress addresses. Config and keys come from the
# host (/etc/mpic-node); the signing key may also come from Vault via a template block.
job "mpic-node" {
  type = "system"

  constraint {
    attribute = "${meta.mpic_perspective}"
    value     = "true"
  }

  update {
    max_parallel = 1
    stagger      = "30s"
  }

  group "perspective" {
    network {
      mode = "host"
      port "quic" { static = 4433 }
      port "metrics" { static = 9464 }
    }

    service {
      name     = "mpic-node-metrics"
      port     = "metrics"
      provider = "nomad"
      check {
        type     = "http"
        path     = "/readyz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "mpic-node" {
      driver       = "docker"
      kill_signal  = "SIGTERM"
      kill_timeout = "30s" # shutdown.grace_period (10 s) plus margin

      config {
        image        = "mpic-node:latest"
        network_mode = "host"
        args         = ["run", "--config", "/etc/mpic-node/mpic-node.toml"]
        readonly_rootfs = true
        cap_drop     = ["all"]
        volumes = [
          "/etc/mpic-node:/etc/mpic-node:ro",
          "/var/lib/mpic-node:/var/lib/mpic-node",
        ]
      }

      resources {
        cpu    = 1000
        memory = 512
      }
    }
  }
}
