#include "test_certs.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>

namespace sluice::test {

namespace {
void sh(const std::string& cmd) {
    const std::string full = cmd + " >/dev/null 2>&1";
    if (std::system(full.c_str()) != 0) {  // NOLINT(concurrency-mt-unsafe): test setup
        throw std::runtime_error("command failed: " + cmd);
    }
}
}  // namespace

const TestCerts& test_certs() {
    static std::once_flag once;
    static TestCerts certs;
    std::call_once(once, [] {
        char tmpl[] = "/tmp/sluice-certs-XXXXXX";
        const char* dir = mkdtemp(tmpl);
        if (dir == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        certs.dir = dir;
        const std::string d = certs.dir;
        certs.ca_cert = d + "/ca.pem";
        certs.server_cert = d + "/server.pem";
        certs.server_key = d + "/server.key";
        certs.untrusted_cert = d + "/untrusted.pem";
        certs.untrusted_key = d + "/untrusted.key";
        std::ofstream(d + "/ext.cnf") << "basicConstraints=CA:FALSE\n"
                                         "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                         "keyUsage=digitalSignature,keyEncipherment\n"
                                         "extendedKeyUsage=serverAuth\n";
        sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
           "-subj /CN=sluice-test-ca -keyout " +
           d + "/ca.key -out " + certs.ca_cert);
        sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 "
           "-keyout " +
           certs.server_key + " -out " + d + "/server.csr");
        sh("openssl x509 -req -in " + d + "/server.csr -CA " + certs.ca_cert + " -CAkey " + d +
           "/ca.key -CAcreateserial -days 2 -extfile " + d + "/ext.cnf -out " + certs.server_cert);
        sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
           "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
           certs.untrusted_key + " -out " + certs.untrusted_cert);
    });
    return certs;
}

}  // namespace sluice::test
