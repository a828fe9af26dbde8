#include "net/deadline.hpp"

namespace sluice {

Deadline::Deadline(const net::any_io_executor& ex, tcp::socket* socket, tcp::resolver* resolver)
    : impl_(std::make_shared<Impl>(ex)) {
    impl_->socket = socket;
    impl_->resolver = resolver;
}

Deadline::~Deadline() {
    impl_->socket = nullptr;
    impl_->resolver = nullptr;
    impl_->timer.cancel();
}

void Deadline::expires_after(Clock::duration d) {
    expires_at(Clock::now() + d);
}

void Deadline::expires_at(Clock::time_point t) {
    impl_->deadline = t;
    impl_->expired = false;
    if (!impl_->armed || t < impl_->timer.expiry()) {
        arm(impl_);
    }
}

void Deadline::clear() noexcept {
    impl_->deadline = Clock::time_point::max();
    impl_->expired = false;
}

void Deadline::arm(const std::shared_ptr<Impl>& impl) {
    impl->timer.expires_at(impl->deadline);
    impl->armed = true;
    impl->timer.async_wait([impl](const error_code& ec) { on_wait(impl, ec); });
}

void Deadline::on_wait(const std::shared_ptr<Impl>& impl, const error_code& ec) {
    if (ec == net::error::operation_aborted) {
        return;  // re-armed (a newer wait is pending) or destroyed
    }
    impl->armed = false;
    if (impl->socket == nullptr || impl->deadline == Clock::time_point::max()) {
        return;
    }
    if (Clock::now() >= impl->deadline) {
        impl->expired = true;
        error_code ignored;
        impl->socket->cancel(ignored);
        if (impl->resolver != nullptr) {
            impl->resolver->cancel();
        }
        return;
    }
    arm(impl);
}

}  // namespace sluice
