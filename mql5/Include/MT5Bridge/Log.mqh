//+------------------------------------------------------------------+
//| MT5Bridge/Log.mqh                                                |
//| What the trader reads in the Experts log. The terminal already   |
//| prefixes every line with the EA's name and chart.                |
//+------------------------------------------------------------------+
#ifndef MT5B_LOG_MQH
#define MT5B_LOG_MQH

enum ENUM_BRIDGE_LOG
  {
   BRIDGE_LOG_ERROR=0,     // Errors only
   BRIDGE_LOG_WARNING=1,   // Errors and warnings
   BRIDGE_LOG_INFO=2,      // What the EA does (recommended)
   BRIDGE_LOG_DEBUG=3      // Every message sent and received
  };

ENUM_BRIDGE_LOG g_log_level=BRIDGE_LOG_INFO;

void LogSetLevel(const ENUM_BRIDGE_LOG level)
  {
   g_log_level=level;
  }

bool LogDebugOn(void)
  {
   return(g_log_level>=BRIDGE_LOG_DEBUG);
  }

void LogError(const string text)
  {
   Print("ERROR: ",text);
  }

void LogWarning(const string text)
  {
   if(g_log_level>=BRIDGE_LOG_WARNING)
      Print("WARNING: ",text);
  }

void LogInfo(const string text)
  {
   if(g_log_level>=BRIDGE_LOG_INFO)
      Print(text);
  }

void LogDebug(const string text)
  {
   if(g_log_level>=BRIDGE_LOG_DEBUG)
      Print("debug: ",text);
  }

#endif // MT5B_LOG_MQH
