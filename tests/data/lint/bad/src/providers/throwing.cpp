// Fixture for scripts/lint-untrusted-json.sh: every line below must be reported.
void bad(const Json& body, const Json& v) {
    auto model = body.at("model");
    auto n = body["max_tokens"].get<int>();
    auto t = body.value("temperature", 1.0);
    auto doc = Json::parse(text);



    const auto& s = v.get_ref<const std::string&>();
    auto u = body->at(0);  auto url = std::string("http://x") + body->template get<std::string>();
    auto w = v->value(key, 0);
}
