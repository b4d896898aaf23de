# oauth2-proxy built from source, the version ansible/roles/oauth2_proxy pins: the VM
# suite installs it in the guest as the release binary (the host's admin gate).
oauth2-proxy github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6
