// Everything pipeslot offers, in one include.
#pragma once

#include <pipeslot/backend.hpp>
#include <pipeslot/discovery.hpp>
#include <pipeslot/error.hpp>
#include <pipeslot/gateway.hpp>
#include <pipeslot/handle.hpp>
#include <pipeslot/ipc_system.hpp>
#include <pipeslot/mailslot.hpp>
#include <pipeslot/message_channel.hpp>
#include <pipeslot/name.hpp>
#include <pipeslot/pipe.hpp>
#include <pipeslot/pipe_server.hpp>
#include <pipeslot/process.hpp>
#include <pipeslot/stream.hpp>
#include <pipeslot/timeout.hpp>
