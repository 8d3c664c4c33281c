"""Operations: logs, metrics, the operations HTTP endpoint, systemd notification and worker processes."""
