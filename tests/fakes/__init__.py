"""Loopback stand-ins for GitHub and the Hugging Face Hub, driven by the real PyGithub / huggingface_hub."""
