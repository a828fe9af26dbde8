#pragma once

#include <string>

namespace sluice::test {

/// A throw-away PKI generated with the openssl CLI at test time: a CA, a server certificate for
/// 127.0.0.1/localhost signed by it, and a self-signed certificate no one trusts.
struct TestCerts {
    std::string dir;
    std::string ca_cert;
    std::string server_cert;
    std::string server_key;
    std::string untrusted_cert;
    std::string untrusted_key;
};

/// Generated once per process; throws on failure.
const TestCerts& test_certs();

}  // namespace sluice::test
