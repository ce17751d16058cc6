"""maggy and the platform's services: MLflow tracking and registry, the WebHDFS artifact store."""
